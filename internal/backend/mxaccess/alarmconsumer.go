package mxaccess

import (
	"fmt"

	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/variant"
)

// The native alarm consumer (GALAXY.md §2.4) as a second COM object on the
// backend's STA: the decisions (which methods it needs, how HRESULTs and
// the document bound become errors) are here, tested with a fake
// DispatchCreator; the COM calls are the Object's (alarms_windows.go).

// ConsumerProgID is the wnwrap alarm consumer's ProgID [inferred from the
// class name WNWRAPCONSUMERLib.wwAlarmConsumerClass; check on a node].
const ConsumerProgID = "WNWRAPCONSUMERLib.wwAlarmConsumer"

// The consumer's methods [inferred], resolved when it opens, so a consumer
// without them fails to open instead of failing later.
const (
	consumerInitialize = "InitializeConsumer"
	consumerSetQuery   = "SetXmlAlarmQuery"
	consumerCurrent    = "GetXmlCurrentAlarms2"
	consumerAck        = "AckAlarm"
)

// ConsumerMethods lists the consumer's methods.
var ConsumerMethods = []string{consumerInitialize, consumerSetQuery, consumerCurrent, consumerAck}

// Dispatcher is a further COM object living on the Object's STA.
type Dispatcher interface {
	// Invoke calls method name (resolved by CreateDispatch); the error is
	// only for a broken runtime, refusals are in CallResult.HRESULT.
	Invoke(name string, args []variant.Value) (CallResult, error)
	// Release releases the object on the STA.
	Release()
}

// DispatchCreator is implemented by an Object that can create further COM
// objects on its STA.
type DispatchCreator interface {
	// ClassExists reports whether progID is registered on this host.
	ClassExists(progID string) bool
	// CreateDispatch creates progID and resolves methods; a missing class
	// or method is a *backend.NotSupportedError.
	CreateDispatch(progID string, methods []string) (Dispatcher, error)
}

var _ backend.AlarmConsumer = (*Backend)(nil)

func (b *Backend) creator() (DispatchCreator, bool) {
	dc, ok := b.obj.(DispatchCreator)
	return dc, ok && b.obj != nil
}

// HasAlarmConsumer implements backend.AlarmConsumer.
func (b *Backend) HasAlarmConsumer() bool {
	dc, ok := b.creator()
	return ok && dc.ClassExists(ConsumerProgID)
}

// OpenAlarmConsumer implements backend.AlarmConsumer: create, initialise
// and set the query; any failure releases it.
func (b *Backend) OpenAlarmConsumer(query string) error {
	if err := b.CloseAlarmConsumer(); err != nil {
		return err
	}
	dc, ok := b.creator()
	if !ok {
		return &backend.NotSupportedError{Method: backend.AlarmConsumerMethod, Reason: "this MXAccess object cannot create the alarm consumer"}
	}
	d, err := dc.CreateDispatch(ConsumerProgID, ConsumerMethods)
	if err != nil {
		return err
	}
	b.consumer = d
	if err := b.consumerCall(consumerInitialize, variant.BSTR("mxgateway")); err != nil {
		b.CloseAlarmConsumer()
		return err
	}
	if err := b.consumerCall(consumerSetQuery, variant.BSTR(query)); err != nil {
		b.CloseAlarmConsumer()
		return err
	}
	return nil
}

// PollAlarmConsumer implements backend.AlarmConsumer.
func (b *Backend) PollAlarmConsumer(maxBytes int) (string, error) {
	res, err := b.consumerInvoke(consumerCurrent)
	if err != nil {
		return "", err
	}
	if maxBytes > 0 && len(res.Ret.Str) > maxBytes {
		return "", backend.NewCallError(consumerCurrent, mxtypes.E_FAIL,
			fmt.Sprintf("the current-alarm document is %d bytes, at most %d", len(res.Ret.Str), maxBytes))
	}
	return res.Ret.Str, nil
}

// AckAlarm implements backend.AlarmConsumer.
func (b *Backend) AckAlarm(guid, comment, user string) error {
	return b.consumerCall(consumerAck, variant.BSTR(guid), variant.BSTR(comment), variant.BSTR(user))
}

// CloseAlarmConsumer implements backend.AlarmConsumer.
func (b *Backend) CloseAlarmConsumer() error {
	if b.consumer != nil {
		b.consumer.Release()
		b.consumer = nil
	}
	return nil
}

func (b *Backend) consumerCall(name string, args ...variant.Value) error {
	_, err := b.consumerInvoke(name, args...)
	return err
}

func (b *Backend) consumerInvoke(name string, args ...variant.Value) (CallResult, error) {
	if b.consumer == nil {
		return CallResult{}, backend.NewCallError(name, mxtypes.E_FAIL, "the alarm consumer is not open")
	}
	res, err := b.consumer.Invoke(name, args)
	if err != nil {
		return CallResult{}, err
	}
	if res.HRESULT != 0 {
		return CallResult{}, backend.NewCallError(name, res.HRESULT, res.Message)
	}
	return res, nil
}
