//go:build wine

package wine

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSelftest runs `mxworker selftest` (windows/386) against the stand-in,
// as docs/windows.md tells an operator to on a new node: the object is
// created from the registered ProgID, the type library read (every method
// shape matching, both event interfaces advised, the status record
// layout), Register/AddItem/Advise, the first OnDataChange through the
// sink while the STA pumps, the teardown, RESULT: OK.
func TestSelftest(t *testing.T) {
	dir := t.TempDir()
	galaxy := filepath.Join(dir, "galaxy.txt")
	if err := os.WriteFile(galaxy, suite.galaxy, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(suite.tools["wine"], winPath(suite.worker), "selftest", "--ref", "Types.Double", "--timeout", "60s")
	cmd.Env = append(wineEnv(suite.prefix), "TZ="+zone, "MXG_STANDIN_GALAXY="+winPath(galaxy),
		"MXG_STANDIN_TRACE_DIR="+winPath(dir))
	text, err := output(cmd)
	if err != nil {
		t.Fatalf("selftest: %v\n%s", err, text)
	}
	for _, want := range []string{
		`dll=` + lmxDir + `\LmxProxy.dll`,
		"interface_level=5",
		"ILMXProxyServer5 {ECEFF506-A752-46E3-9E31-0A8E257C9926} obtained=true dual=true",
		"_ILMXProxyServerEvents {3CAD8A37-BB2E-48E3-9909-61A4E36D4E05} advised=true",
		"_ILMXProxyServerEvents2 {81248ABA-674A-4CB3-8CD3-F349CBA001A2} advised=true",
		"OnDataChange           dispid=101",
		"MXSTATUS_PROXY: size=16",
		"matches the compiled-in layout",
		"arg 5: raw VT_BYREF|VT_ARRAY|VT_RECORD",
		"record bytes: FF FF 00 00",
		"decoded VT_R8(2.25)",
		"first OnDataChange after",
		"RESULT: OK",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("selftest output lacks %q", want)
		}
	}
	if strings.Contains(text, "DIFFERS") {
		t.Errorf("a type-library shape differs from the compiled-in one:\n%s", text)
	}
	if t.Failed() {
		t.Logf("selftest output:\n%s", text)
	}
}
