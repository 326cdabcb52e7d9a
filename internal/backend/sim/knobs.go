package sim

import (
	"fmt"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
)

// Profiles select the default timing of the simulator.
const (
	// ProfileDefault: firstBindDelay 300 ms, rebindDelay 50 ms, updateLatency 20 ms.
	ProfileDefault = "default"
	// ProfileTest: every delay 0, for fast deterministic tests.
	ProfileTest = "test"
)

// Knob values of the string-valued knobs.
const (
	HandleReuseLowest    = "lowest"
	HandleReuseMonotonic = "monotonic"

	WriteCoercionLenient = "lenient"
	WriteCoercionStrict  = "strict"

	EchoCompletionFirst = "completionFirst"
	EchoDataFirst       = "dataFirst"
	EchoRandom          = "random"

	SecurityNone   = "none"
	SecurityGalaxy = "galaxy"
	SecurityOSUser = "osUser"
)

// Knobs are the behaviour switches of MXACCESS.md §7.3. Start from
// DefaultKnobs and change what a test needs; New validates them.
type Knobs struct {
	// MaxInterfaceLevel is the highest ILMXProxyServerN offered (1-5).
	MaxInterfaceLevel int
	// FirstBindDelay delays the first OnDataChange after the first advise of
	// a reference in this backend; RebindDelay after later advises.
	FirstBindDelay time.Duration
	RebindDelay    time.Duration
	// UpdateLatency delays the application of an accepted write (its
	// OnWriteComplete and echo) and the value sent on Activate.
	UpdateLatency time.Duration
	// HandleReuse is "lowest" (reuse the lowest freed item handle first) or
	// "monotonic" (never reuse).
	HandleReuse string
	// StatusSuccessValue is the raw success word of successful statuses
	// (-1 or 1); StatusArrayLength the number of status elements sent.
	StatusSuccessValue int16
	StatusArrayLength  int
	// The first OnDataChange of an unresolvable or malformed reference.
	UnresolvedQuality  uint16
	UnresolvedCategory int32
	UnresolvedDetail   int16
	// ArrayWithoutBracketsCategory pairs with detail 1003 for an array
	// attribute referenced without [].
	ArrayWithoutBracketsCategory int32
	// StrictAddItem makes AddItem of a malformed reference return
	// E_INVALIDARG instead of a handle.
	StrictAddItem bool
	// WriteCoercion is "lenient" or "strict" (exact VARIANT type only).
	WriteCoercion string
	// WritePendingFirst sends an MxCategoryPending OnWriteComplete before
	// the final one.
	WritePendingFirst bool
	// WriteEchoOrder orders a write's OnWriteComplete and the OnDataChange of
	// the changed value: "completionFirst", "dataFirst" or "random".
	WriteEchoOrder string
	// EmitTimestampOnlyChanges fires OnDataChange when only the timestamp
	// changed (Write2 of the current value).
	EmitTimestampOnlyChanges bool
	// EmitOperationComplete sends OperationComplete after Suspend/Activate.
	EmitOperationComplete bool
	// InvalidHandleHResult is returned for unknown server or item handles.
	InvalidHandleHResult int32
	// SecurityMode is "none", "galaxy" or "osUser".
	SecurityMode string
	// BufferedUpdateInterval is the buffered-item interval of a registration
	// until SetBufferedUpdateInterval changes it.
	BufferedUpdateInterval time.Duration
}

// DefaultKnobs returns the defaults of profile ("default" or "test"; ""
// means "default").
func DefaultKnobs(profile string) (Knobs, error) {
	k := Knobs{
		MaxInterfaceLevel:            5,
		FirstBindDelay:               300 * time.Millisecond,
		RebindDelay:                  50 * time.Millisecond,
		UpdateLatency:                20 * time.Millisecond,
		HandleReuse:                  HandleReuseLowest,
		StatusSuccessValue:           -1,
		StatusArrayLength:            1,
		UnresolvedQuality:            mxtypes.QualityBad,
		UnresolvedCategory:           int32(mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_CONFIGURATION_ERROR),
		UnresolvedDetail:             0,
		ArrayWithoutBracketsCategory: int32(mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_COMMUNICATION_ERROR),
		WriteCoercion:                WriteCoercionLenient,
		WriteEchoOrder:               EchoCompletionFirst,
		InvalidHandleHResult:         mxtypes.E_INVALIDARG,
		SecurityMode:                 SecurityNone,
		BufferedUpdateInterval:       time.Second,
	}
	switch profile {
	case "", ProfileDefault:
	case ProfileTest:
		k.FirstBindDelay, k.RebindDelay, k.UpdateLatency = 0, 0, 0
	default:
		return Knobs{}, fmt.Errorf("sim: unknown profile %q (want %q or %q)", profile, ProfileDefault, ProfileTest)
	}
	return k, nil
}

// Validate reports the first invalid knob.
func (k *Knobs) Validate() error {
	switch {
	case k.MaxInterfaceLevel < 1 || k.MaxInterfaceLevel > 5:
		return fmt.Errorf("sim: maxInterfaceLevel %d not in 1..5", k.MaxInterfaceLevel)
	case k.FirstBindDelay < 0 || k.RebindDelay < 0 || k.UpdateLatency < 0:
		return fmt.Errorf("sim: negative delay")
	case k.HandleReuse != HandleReuseLowest && k.HandleReuse != HandleReuseMonotonic:
		return fmt.Errorf("sim: handleReuse %q (want lowest or monotonic)", k.HandleReuse)
	case k.StatusSuccessValue == 0:
		return fmt.Errorf("sim: statusSuccessValue must be non-zero")
	case k.StatusArrayLength < 1 || k.StatusArrayLength > 16:
		return fmt.Errorf("sim: statusArrayLength %d not in 1..16", k.StatusArrayLength)
	case k.WriteCoercion != WriteCoercionLenient && k.WriteCoercion != WriteCoercionStrict:
		return fmt.Errorf("sim: writeCoercion %q (want lenient or strict)", k.WriteCoercion)
	case k.WriteEchoOrder != EchoCompletionFirst && k.WriteEchoOrder != EchoDataFirst && k.WriteEchoOrder != EchoRandom:
		return fmt.Errorf("sim: writeEchoOrder %q (want completionFirst, dataFirst or random)", k.WriteEchoOrder)
	case k.SecurityMode != SecurityNone && k.SecurityMode != SecurityGalaxy && k.SecurityMode != SecurityOSUser:
		return fmt.Errorf("sim: securityMode %q (want none, galaxy or osUser)", k.SecurityMode)
	case k.BufferedUpdateInterval <= 0:
		return fmt.Errorf("sim: bufferedUpdateInterval must be positive")
	case k.InvalidHandleHResult >= 0:
		return fmt.Errorf("sim: invalidHandleHResult 0x%08X is not a failure code", uint32(k.InvalidHandleHResult))
	}
	return nil
}
