//go:build !(windows && 386)

package alarms

// NativeConsumers returns nil: the native alarm consumer is a COM object of
// the x86 Windows build only.
func NativeConsumers() ConsumerFactory { return nil }
