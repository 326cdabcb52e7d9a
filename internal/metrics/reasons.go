package metrics

// Outcome returns the outcome label of a finished command: OutcomeError
// when err is not nil, OutcomeMXAccessFailure when MXAccess refused the
// call (a reply with status MXACCESS_FAILURE), else OutcomeOK.
func Outcome(err error, mxaccessFailure bool) string {
	switch {
	case err != nil:
		return OutcomeError
	case mxaccessFailure:
		return OutcomeMXAccessFailure
	default:
		return OutcomeOK
	}
}
