package sim

import (
	"strings"
	"testing"
	"time"
)

// TestDemoWatchdogReferenceTicks keeps the gateway's default watchdog
// reference alive: it names an attribute of the demo Galaxy whose generator
// changes it at least every second.
func TestDemoWatchdogReferenceTicks(t *testing.T) {
	tag, name, ok := strings.Cut(DemoWatchdogReference, ".")
	if !ok {
		t.Fatalf("DemoWatchdogReference %q is not tag.attribute", DemoWatchdogReference)
	}
	o := DemoModel().Object(tag)
	if o == nil {
		t.Fatalf("demo Galaxy has no object %s", tag)
	}
	a := o.Attribute(name)
	if a == nil || a.Generator == nil || a.Generator.Every <= 0 || a.Generator.Every > time.Second {
		t.Fatalf("%s: attribute %+v, want a generator ticking at least every second", DemoWatchdogReference, a)
	}
}
