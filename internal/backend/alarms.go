package backend

// AlarmConsumer is a backend's optional native alarm consumer (GALAXY.md
// §2.4: the System Platform consumer, polled for its current alarms), the
// worker-side half of the gateway's native alarm provider. A backend
// without it has no consumer; one that has it may still report
// *NotSupportedError (the class is not registered on this host).
//
// Like every Backend method, these are called by one goroutine at a time
// (the worker's command loop), the consumer living on the backend's own
// thread (the STA for MXAccess). One consumer at a time: Open replaces
// the current one.
type AlarmConsumer interface {
	// HasAlarmConsumer reports whether this host has the consumer (for
	// WorkerReady): false means every other call fails NotSupported.
	HasAlarmConsumer() bool
	// OpenAlarmConsumer registers the consumer for an alarm query
	// (\\Node\Galaxy!Area, or \Galaxy! for every area of the node).
	OpenAlarmConsumer(query string) error
	// PollAlarmConsumer returns the current-alarm document, at most
	// maxBytes long (a longer one is a *CallError).
	PollAlarmConsumer(maxBytes int) (string, error)
	// AckAlarm acknowledges the current alarm guid with comment, as user
	// ("" for the consumer's own identity).
	AckAlarm(guid, comment, user string) error
	// CloseAlarmConsumer releases the consumer; closing none is nil.
	CloseAlarmConsumer() error
}

// AlarmConsumerMethod names the consumer's calls in errors.
const AlarmConsumerMethod = "AlarmConsumer"
