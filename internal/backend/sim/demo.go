package sim

import (
	_ "embed"
	"fmt"
)

//go:embed demo.yaml
var demoYAML []byte

// DemoYAML returns the source of the embedded demo Galaxy, for users who
// want to start their own model from it.
func DemoYAML() []byte { return append([]byte(nil), demoYAML...) }

// DemoModel returns a fresh copy of the embedded demo Galaxy (the default
// model).
func DemoModel() *Model {
	m, err := ParseModel(demoYAML, "demo.yaml")
	if err != nil {
		// The demo is part of the binary and covered by tests.
		panic(fmt.Sprintf("sim: embedded demo model: %v", err))
	}
	return m
}

// DemoWatchdogReference is the demo Galaxy's attribute that changes every
// second: the gateway's data watchdog advises it by default when the
// simulator runs the built-in model (data_watchdog_reference auto).
const DemoWatchdogReference = "Line1.Clock"
