package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// requireTool skips a test when a tool it needs is missing, except on CI
// (CI set, as .ci/run does), where a missing tool is a failure: .ci/run
// installs everything the tests use.
func requireTool(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing on CI (install it in .ci/run): %v", what, err)
	}
	t.Skipf("%s is missing: %v", what, err)
}

// shBlocks returns the ```sh blocks of a Markdown file, in order.
func shBlocks(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var cur []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !in && strings.TrimSpace(line) == "```sh":
			in, cur = true, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, "\n"))
		case in:
			cur = append(cur, line)
		}
	}
	if len(blocks) == 0 {
		t.Fatalf("%s has no sh block", path)
	}
	return blocks
}

// aptInstall matches an install line of a docs page.
var aptInstall = regexp.MustCompile(`(?m)^\s*(?:sudo )?apt-get install (?:-\S+ )*(.+)$`)

// ciPackageList matches the package lists of .ci/run: one bash array per
// purpose (client_packages, wine_packages), installed together.
var ciPackageList = regexp.MustCompile(`(?m)^\w+_packages=\(([^)]*)\)`)

// ciPackages returns the Debian packages .ci/run installs.
func ciPackages(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []string
	for _, m := range ciPackageList.FindAllStringSubmatch(string(b), -1) {
		pkgs = append(pkgs, strings.Fields(m[1])...)
	}
	if len(pkgs) == 0 {
		t.Fatal(".ci/run lists no Debian packages (want NAME_packages=(...) arrays)")
	}
	return pkgs
}

// docScript turns a quick start page into one bash script: its install
// lines (apt-get) must be what .ci/run installs, which runs them; every
// other line runs here, in order.
func docScript(t *testing.T, page string) string {
	t.Helper()
	ci := ciPackages(t)
	var run []string
	for _, block := range shBlocks(t, page) {
		if m := aptInstall.FindStringSubmatch(block); m != nil {
			for _, p := range strings.Fields(m[1]) {
				if !slices.Contains(ci, p) {
					t.Errorf("%s installs %s, which .ci/run does not install", page, p)
				}
			}
			continue
		}
		run = append(run, block)
	}
	return "set -euo pipefail\n" + strings.Join(run, "\n")
}

// copyFiles copies files (relative to the repository root) into dir, keeping
// their paths.
func copyFiles(t *testing.T, dir string, files ...string) {
	t.Helper()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("../..", f))
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// kitFiles lists the client kit: the API's .proto files and the descriptor
// set.
func kitFiles(t *testing.T) []string {
	t.Helper()
	protos, err := filepath.Glob("../../api/mxgateway/v1/*.proto")
	if err != nil || len(protos) == 0 {
		t.Fatalf("no .proto files: %v", err)
	}
	files := []string{"api/mxgateway.v1.binpb"}
	for _, p := range protos {
		files = append(files, strings.TrimPrefix(filepath.ToSlash(p), "../../"))
	}
	return files
}

// runDocScript runs script in dir against g and checks that the quick start
// said it succeeded.
func runDocScript(t *testing.T, g *harness.Gateway, dir, path, script string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+path, "MXGATEWAY_ADDR="+g.GRPCAddr, "MXGATEWAY_DATA_DIR="+g.DataDir,
		"MXGATEWAY_API_KEY=", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("quick start failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "\nquickstart: ok\n") {
		t.Fatalf("quick start did not report success:\n%s", out)
	}
	list, err := g.Client().ListSessions(harness.Context(t, step), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list.GetSessions()); n != 0 {
		t.Fatalf("the quick start left %d sessions open", n)
	}
}

// TestPythonQuickstart runs docs/clients/python.md as written, with
// Debian's python3-grpcio and python3-grpc-tools, in a directory holding
// only the client kit and the example.
func TestPythonQuickstart(t *testing.T) {
	t.Parallel()
	// Debian's packages serve Debian's interpreter; another python3 may
	// come first on PATH (pyenv, a venv).
	var python string
	var lastErr error
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			lastErr = err
			continue
		}
		out, err := exec.Command(path, "-c", "import grpc, grpc_tools.protoc, google.protobuf").CombinedOutput()
		if err != nil {
			lastErr = &exec.Error{Name: path + " with grpc, grpc_tools and protobuf", Err: errorString(strings.TrimSpace(string(out)))}
			continue
		}
		python = path
		break
	}
	if python == "" {
		requireTool(t, "python3 with python3-grpcio, python3-grpc-tools and python3-protobuf", lastErr)
	}
	script := docScript(t, "../../docs/clients/python.md")
	dir := t.TempDir()
	copyFiles(t, dir, append(kitFiles(t), "docs/clients/python/quickstart.py")...)
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(python, filepath.Join(bin, "python3")); err != nil {
		t.Fatal(err)
	}
	g := harness.Start(t)
	runDocScript(t, g, dir, bin+string(os.PathListSeparator)+os.Getenv("PATH"), script, 2*time.Minute)
}

// TestNodeQuickstart runs docs/clients/node.md as written (npm ci from the
// committed lock file), in a directory holding only the client kit and the
// example.
func TestNodeQuickstart(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"node", "npm"} {
		_, err := exec.LookPath(tool)
		requireTool(t, tool, err)
	}
	script := docScript(t, "../../docs/clients/node.md")
	dir := t.TempDir()
	copyFiles(t, dir, append(kitFiles(t), "docs/clients/node/package.json", "docs/clients/node/package-lock.json",
		"docs/clients/node/quickstart.js")...)
	g := harness.Start(t)
	runDocScript(t, g, dir, os.Getenv("PATH"), script, 5*time.Minute)
}

type errorString string

func (e errorString) Error() string { return string(e) }
