package sim

import (
	"strings"
	"testing"
)

// TestGeneratorMinimumPeriod: generators faster than MinGeneratorPeriod are
// refused with the file and line of the offending key.
func TestGeneratorMinimumPeriod(t *testing.T) {
	for _, c := range []struct {
		name, src, where string
	}{
		{"every", `galaxy: G
objects:
  - tag: A
    attributes:
      - name: X
        type: MxInteger
        generator: {kind: counter, every: 500us}
`, "m.yaml:7:"},
		{"looping script", `galaxy: G
objects:
  - tag: A
    attributes:
      - name: X
        type: MxInteger
        generator:
          kind: script
          loop: true
          steps:
            - {after: 200us, value: 1}
            - {after: 300us, value: 2}
`, "m.yaml:8:"},
	} {
		_, err := ParseModel([]byte(c.src), "m.yaml")
		if err == nil || !strings.Contains(err.Error(), c.where) || !strings.Contains(err.Error(), "minimum generator period") {
			t.Errorf("%s: err %v, want the minimum period at %s", c.name, err, c.where)
		}
	}
	ok := `galaxy: G
objects:
  - tag: A
    attributes:
      - {name: X, type: MxInteger, generator: {kind: counter, every: 10ms}}
`
	if _, err := ParseModel([]byte(ok), "m.yaml"); err != nil {
		t.Fatalf("a generator at the minimum period: %v", err)
	}
}
