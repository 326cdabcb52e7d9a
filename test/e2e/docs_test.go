package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	mxgatewayv1grpc "github.com/mxgateway/mxgateway/api/mxgateway/v1/mxgatewayv1grpc"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// docCommand is one command shown in the documentation.
type docCommand struct {
	page, line string
	out        string // the output shown under a "$ " command, if any
}

// docPages lists README.md and every page under docs/.
func docPages(t *testing.T) []string {
	t.Helper()
	pages := []string{"../../README.md"}
	for _, pat := range []string{"../../docs/*.md", "../../docs/*/*.md"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, m...)
	}
	return pages
}

// commandWord starts a line that looks like a command of ours.
var commandWord = regexp.MustCompile(`^(\$ |sudo )?(go (run|install|tool)|make|mxgateway|mxctl|mxworker(\.exe)?|grpcurl|curl|protoc|npm|node|python3|apt-get|PYTHONPATH=\S+|MXGATEWAY_\w+=\S+)( |$)`)

// outputLine is a line of our tools' output ("mxctl read: ...").
var outputLine = regexp.MustCompile(`^\S+( \S+)?: `)

// docCommands returns every command the pages show: the logical lines of
// ```sh blocks (continuations joined, here-document bodies skipped) and the
// "$ " lines of other blocks. A plain block without "$ " whose lines look
// like commands is an error: mark it sh, prompt its commands with "$ ", or
// mark it text when it is a synopsis or output.
func docCommands(t *testing.T) []docCommand {
	t.Helper()
	var out []docCommand
	for _, page := range docPages(t) {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(page, "../../")
		for _, f := range fences(string(b)) {
			lines := strings.Split(f.body, "\n")
			switch f.lang {
			case "sh":
				heredoc := ""
				for i := 0; i < len(lines); i++ {
					line := lines[i]
					if heredoc != "" {
						if strings.TrimSpace(line) == heredoc {
							heredoc = ""
						}
						continue
					}
					for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
						i++
						line = strings.TrimSuffix(line, "\\") + " " + strings.TrimSpace(lines[i])
					}
					if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") ||
						strings.TrimSpace(line) == "EOF" || strings.TrimSpace(line) == ")" {
						continue
					}
					if _, after, ok := strings.Cut(line, "<<"); ok {
						heredoc = strings.Trim(strings.Fields(after)[0], `'"`)
					}
					out = append(out, docCommand{page: name, line: strings.TrimSpace(line)})
				}
			case "":
				prompted := false
				for _, line := range lines {
					if cmd, ok := strings.CutPrefix(line, "$ "); ok {
						out = append(out, docCommand{page: name, line: cmd})
						prompted = true
						continue
					}
					if prompted {
						out[len(out)-1].out += line + "\n"
					}
				}
				if !prompted {
					for _, line := range lines {
						if commandWord.MatchString(line) && !outputLine.MatchString(line) && !strings.ContainsAny(line, "─│┌└├▼►") {
							t.Errorf("%s: %q looks like a command in an unmarked block: use ```sh, a \"$ \" prompt, or ```text", name, line)
						}
					}
				}
			}
		}
	}
	return out
}

// docRule says how the commands it matches are executed.
type docRule struct {
	page string         // "" for any page
	re   *regexp.Regexp // matches the command line
	// by names the test that runs these commands itself (from the page,
	// not from a copy), or why they cannot run here.
	by string
	// run executes the command here, when by is "".
	run func(t *testing.T, c docCommand)
}

// TestEveryDocCommandRuns: every command shown in README.md and docs/ is
// run by a test, in this file or by the test a rule names; a command no
// rule covers fails, so a new one in the docs needs a test.
func TestEveryDocCommandRuns(t *testing.T) {
	t.Parallel()
	bin := harness.Binary(t)
	rules := []docRule{
		{re: regexp.MustCompile(`^((go run \./cmd/)?mxctl|MXGATEWAY_CA_FILE=\S+ mxctl) `), by: "TestEveryExampleRuns in cmd/mxctl runs every mxctl example of the docs and the help"},
		{page: "README.md", re: regexp.MustCompile(`^(KEY=|SID=|grpcurl |go install github\.com/fullstorydev/grpcurl|sudo apt-get install jq$)`), by: "TestReadmeQuickstart runs the README's grpcurl section"},
		{page: "docs/clients/python.md", re: regexp.MustCompile(``), by: "TestPythonQuickstart runs every sh block of the page"},
		{page: "docs/clients/node.md", re: regexp.MustCompile(``), by: "TestNodeQuickstart runs every sh block of the page"},
		{page: "README.md", re: regexp.MustCompile(`^go run \./cmd/mxgateway serve$`), by: "every e2e test starts mxgateway serve (test/e2e/harness), on ports the kernel picks so that tests never take 5000"},
		{page: "README.md", re: regexp.MustCompile(`^make test$`), by: ".ci/run runs make test"},
		{page: "docs/dashboard.md", re: regexp.MustCompile(`^go run \./cmd/mxgateway serve$`), by: "TestDashboardInBrowser (test/ui) starts mxgateway serve (test/e2e/harness, on ports the kernel picks), opens /ui/ and logs in with the first-run key"},
		{page: "docs/dashboard.md", re: regexp.MustCompile(`^make dashboard-shots$`), by: "make dashboard-shots is TestDashboardInBrowser and TestDashboardAlarmsInBrowser with MXGATEWAY_UI_SHOTS set; make test runs those tests"},
		{page: "docs/performance.md", re: regexp.MustCompile(`^(make bench|go run \./cmd/mxbench profile)`), by: "the benchmarks take minutes and never decide pass or fail; make bench runs them"},
		{page: "docs/windows.md", re: regexp.MustCompile(``), by: "Windows only: the Windows service and the real MXAccess worker (windows/386) do not run on Linux"},
		{page: "docs/clients/README.md", re: regexp.MustCompile(`^protoc -I api `), by: "needs protoc 22 or newer, which Debian 12 does not have (the reason for the descriptor-set line after it)"},
		{page: "docs/performance.md", re: regexp.MustCompile(`^go run \./cmd/mxbench (-h|table )`), run: func(t *testing.T, c docCommand) {
			line, _, _ := strings.Cut(c.line, "#")
			runIn(t, "../..", nil, line)
		}},
		{page: "docs/configuration.md", re: regexp.MustCompile(`^mxgateway config validate `), run: func(t *testing.T, c docCommand) {
			out, code := runCode(t, t.TempDir(), nil, strings.Replace(c.line, "mxgateway", bin, 1))
			if code != 1 {
				t.Fatalf("%s: exit %d, the page says it exits 1\n%s", c.line, code, out)
			}
			got, want := strings.Split(strings.TrimSpace(out), "\n"), strings.Split(strings.TrimSpace(c.out), "\n")
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("%s prints\n%s\nthe page shows\n%s", c.line, out, c.out)
			}
		}},
		{page: "docs/operations.md", re: regexp.MustCompile(`^curl -s http://127\.0\.0\.1:5001/readyz$`), run: func(t *testing.T, c docCommand) {
			g := harness.Start(t)
			out := runIn(t, t.TempDir(), nil, strings.ReplaceAll(c.line, "127.0.0.1:5001", g.HTTPAddr))
			if !strings.Contains(out, "ready") {
				t.Fatalf("%s: %s", c.line, out)
			}
		}},
		{page: "docs/simulator.md", re: regexp.MustCompile(`^mxgateway serve --sim-model plant\.yaml$`), run: func(t *testing.T, c docCommand) {
			// plant.yaml: the demo Galaxy's own model file.
			model, err := os.ReadFile("../../internal/backend/sim/demo.yaml")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "plant.yaml")
			if err := os.WriteFile(path, model, 0o600); err != nil {
				t.Fatal(err)
			}
			g := harness.Start(t, "--sim-model="+path)
			s := openSession(t, g.Client(), "sim-model")
			h := s.register()
			r := s.invoke(&mxgatewayv1.Command{Kind: &mxgatewayv1.Command_ReadBulk{ReadBulk: &mxgatewayv1.ReadBulkCommand{
				ServerHandle: h, ItemDefinitions: []string{"Tank1.Material"}}}})
			if e := r.GetReadBulk().GetEntries(); len(e) != 1 || e[0].GetValue().GetStringValue() != "Ethanol" {
				t.Fatalf("a gateway on plant.yaml reads %v", e)
			}
			s.close()
		}},
		{page: "docs/clients/README.md", re: regexp.MustCompile(`^protoc --descriptor_set_in=`), run: func(t *testing.T, c docCommand) {
			if _, err := exec.LookPath("protoc"); err != nil {
				requireTool(t, "protoc (Debian's protobuf-compiler)", err)
			}
			dir := t.TempDir()
			copyFiles(t, dir, kitFiles(t)...)
			if err := os.Mkdir(filepath.Join(dir, "gen"), 0o755); err != nil {
				t.Fatal(err)
			}
			line, _, _ := strings.Cut(c.line, "  #")
			runIn(t, dir, nil, line)
			if _, err := os.Stat(filepath.Join(dir, "gen/mxgateway/v1/values_pb2.py")); err != nil {
				t.Fatalf("%s generated no values_pb2.py: %v", line, err)
			}
		}},
		{page: "docs/browse.md", re: regexp.MustCompile(`^grpcurl .*mxgateway\.v1\.Galaxy/BrowseChildren$`), run: runBrowseGrpcurl},
		{page: "docs/alarms.md", re: regexp.MustCompile(`^mxgateway serve --alarms off$`), run: runAlarmsServe},
	}
	cmds := docCommands(t)
	if len(cmds) < 40 {
		t.Fatalf("found only %d commands in the docs", len(cmds))
	}
	for _, c := range cmds {
		var rule *docRule
		for i := range rules {
			if (rules[i].page == "" || rules[i].page == c.page) && rules[i].re.MatchString(c.line) {
				rule = &rules[i]
				break
			}
		}
		switch {
		case rule == nil:
			t.Errorf("%s: no test runs %q (add a rule to TestEveryDocCommandRuns)", c.page, c.line)
		case rule.run != nil:
			t.Run(c.page+": "+c.line, func(t *testing.T) { rule.run(t, c) })
		}
	}
}

// runCode runs line with bash in dir and returns its combined output and
// exit code.
func runCode(t *testing.T, dir string, env []string, line string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -o pipefail; "+line)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%s: %v", line, err)
		}
		return string(out), ee.ExitCode()
	}
	return string(out), 0
}

// runIn runs line and fails the test unless it exits 0.
func runIn(t *testing.T, dir string, env []string, line string) string {
	t.Helper()
	out, code := runCode(t, dir, env, line)
	if code != 0 {
		t.Fatalf("%s: exit %d\n%s", line, code, out)
	}
	return out
}

// runBrowseGrpcurl runs docs/browse.md's grpcurl line, with the pinned
// grpcurl and the first-run admin key, against a real gateway: the first
// page of the demo Galaxy's roots, with a token for the next.
func runBrowseGrpcurl(t *testing.T, c docCommand) {
	dir := t.TempDir()
	bin := grpcurlBinary(t, filepath.Join(dir, "bin"))
	g := harness.Start(t)
	key, err := os.ReadFile(filepath.Join(g.DataDir, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	line := strings.NewReplacer("grpcurl ", bin+" ", "127.0.0.1:5000", g.GRPCAddr).Replace(c.line)
	out := runIn(t, dir, []string{"KEY=" + strings.TrimSpace(string(key))}, line)
	rs := protoObjects(t, out, func() *mxgatewayv1.BrowseChildrenResponse { return &mxgatewayv1.BrowseChildrenResponse{} })
	if len(rs) != 1 || len(rs[0].GetChildren()) == 0 || rs[0].GetChildren()[0].GetContainedPath() != "Plant" || rs[0].GetNextPageToken() == "" {
		t.Fatalf("%s prints\n%s", c.line, out)
	}
	// Following next_page_token with the same line walks every root, once
	// each, as one page of them all lists them.
	const body = `'{"page_size": 1}'`
	if !strings.Contains(line, body) {
		t.Fatalf("%s: no %s to extend with a page token", c.line, body)
	}
	walked := []string{rs[0].GetChildren()[0].GetContainedPath()}
	for tok := rs[0].GetNextPageToken(); tok != ""; {
		next := strings.Replace(line, body, `'{"page_size": 1, "page_token": "`+tok+`"}'`, 1)
		r := protoObjects(t, runIn(t, dir, []string{"KEY=" + strings.TrimSpace(string(key))}, next),
			func() *mxgatewayv1.BrowseChildrenResponse { return &mxgatewayv1.BrowseChildrenResponse{} })
		if len(r) != 1 || len(r[0].GetChildren()) != 1 || len(walked) > 100 {
			t.Fatalf("page %d: %v", len(walked)+1, r)
		}
		walked = append(walked, r[0].GetChildren()[0].GetContainedPath())
		tok = r[0].GetNextPageToken()
	}
	all, err := mxgatewayv1grpc.NewGalaxyClient(g.Conn()).BrowseChildren(harness.Context(t, step), &mxgatewayv1.BrowseChildrenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, o := range all.GetChildren() {
		want = append(want, o.GetContainedPath())
	}
	if !slices.Equal(walked, want) || len(want) < 2 {
		t.Fatalf("grpcurl pages walked %v, one page lists %v", walked, want)
	}
}
