package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// example is one mxctl command line shown to users.
type example struct {
	where string // for messages
	line  string // as shown, with "mxctl" (go run ./cmd/mxctl is rewritten)
	// docOut is the output the documentation shows under it (docs/cli.md).
	docOut string
}

// helpExamples returns the lines of every "Examples:" section of mxctl's
// help: the top-level usage and each command's help.
func helpExamples(t *testing.T) []example {
	t.Helper()
	var out []example
	collect := func(where string, args ...string) {
		r := invoke(t, nil, "", args...)
		if r.code != exitOK {
			t.Fatalf("mxctl %v: exit %d", args, r.code)
		}
		in := false
		n := 0
		for _, line := range strings.Split(r.stdout, "\n") {
			switch {
			case strings.TrimSpace(line) == "Examples:":
				in = true
			case in && strings.HasPrefix(line, "  mxctl "):
				out = append(out, example{where: where, line: strings.TrimSpace(line)})
				n++
			case in:
				in = false
			}
		}
		if n == 0 {
			t.Fatalf("%s shows no examples", where)
		}
	}
	collect("mxctl --help", "--help")
	for _, cmd := range commands() {
		if cmd.name == "version" {
			continue // nothing to show beyond "mxctl version"
		}
		collect("mxctl help "+cmd.name, "help", cmd.name)
	}
	return out
}

// docExamples returns the mxctl commands shown in README.md and the pages
// under docs/: the mxctl lines of ```sh blocks and the "$ " lines of other
// blocks, in order, with the output a page shows under a "$ " line.
func docExamples(t *testing.T) []example {
	t.Helper()
	pages := []string{"../../README.md"}
	for _, pat := range []string{"../../docs/*.md", "../../docs/*/*.md"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, m...)
	}
	var out []example
	for _, page := range pages {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		lang, in := "", false
		last := -1 // the example whose output follows, in this block
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "```") {
				in, lang, last = !in, strings.TrimPrefix(line, "```"), -1
				continue
			}
			if !in {
				continue
			}
			cmdLine, prompted := strings.CutPrefix(line, "$ ")
			if !prompted && lang != "sh" {
				if last >= 0 {
					out[last].docOut += line + "\n"
				}
				continue
			}
			cmdLine = strings.Replace(cmdLine, "go run ./cmd/mxctl ", "mxctl ", 1)
			if !strings.HasPrefix(cmdLine, "mxctl ") && !(prompted && strings.Contains(cmdLine, " mxctl ")) {
				last = -1
				continue
			}
			out = append(out, example{where: page, line: cmdLine})
			last = len(out) - 1
		}
	}
	return out
}

var printedKeyID = regexp.MustCompile(`mxctl apikey: key ([a-z2-7]{16}) \(`)

// The key ids examples use: the key "apikey create" makes, and the one its
// "apikey rotate" makes.
const (
	docCreatedID = "k3x9q2mzt7vb4wda"
	docRotatedID = "p7c2m4xkq9vbz3da"
)

// TestEveryExampleRuns runs every mxctl example of the help output,
// README.md and docs/cli.md, as a shell would (pipes, quotes, redirects),
// against a real gateway, and wants exit 0 from each. The default address
// is the test gateway's; examples with the documented certificate path run
// against a --tls=self-signed gateway; key ids in docs/cli.md are the ones
// the earlier examples created. A subscribe without --duration gets Ctrl-C
// once it printed something.
func TestEveryExampleRuns(t *testing.T) {
	if _, err := exec.LookPath("jq"); err != nil && os.Getenv("CI") != "" {
		t.Fatal("jq is missing on CI (install it in .ci/run)")
	} else if err != nil {
		t.Skip("jq is missing")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "mxctl"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	plain := harness.Start(t, "--alarms=on") // mxctl alarms and ack need the alarm monitor
	tls := harness.Start(t, "--tls=self-signed")
	const docCA = "/var/lib/mxgateway/tls-cert.pem"

	examples := append(helpExamples(t), docExamples(t)...)
	if len(examples) < 20 {
		t.Fatalf("found only %d examples", len(examples))
	}
	ids := map[string]string{} // key id in docs/cli.md → the real one
	for _, ex := range examples {
		t.Run(ex.line, func(t *testing.T) {
			g := plain
			line := ex.line
			if strings.Contains(line, docCA) {
				g = tls
				line = strings.ReplaceAll(line, docCA, tls.CAFile)
			}
			line = strings.ReplaceAll(line, "127.0.0.1:5000", g.GRPCAddr)
			for doc, real := range ids {
				line = strings.ReplaceAll(line, doc, real)
			}
			live := strings.Contains(line, "mxctl subscribe") || strings.Contains(line, "mxctl alarms") && !strings.Contains(line, "--list")
			interrupt := live && !strings.Contains(line, "--duration")
			if interrupt {
				line = "exec " + line
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "-c", "set -o pipefail; "+line)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
				"MXGATEWAY_ADDR="+g.GRPCAddr, "MXGATEWAY_DATA_DIR="+g.DataDir, "MXGATEWAY_API_KEY=", "MXGATEWAY_CA_FILE=",
				"MXGATEWAY_NATS_URL=nats://"+g.NATSAddr)
			var stdout, stderr harness.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			var err error
			if interrupt {
				deadline := time.Now().Add(30 * time.Second)
				for stdout.String() == "" && time.Now().Before(deadline) {
					select {
					case err = <-waited:
						t.Fatalf("%s (%s) ended before Ctrl-C: %v\nstderr:\n%s", ex.line, ex.where, err, stderr.String())
					case <-time.After(20 * time.Millisecond):
					}
				}
				_ = cmd.Process.Signal(syscall.SIGINT)
			}
			err = <-waited
			if err != nil {
				t.Fatalf("%s (%s): %v\nstdout:\n%s\nstderr:\n%s", ex.line, ex.where, err, stdout.String(), stderr.String())
			}
			if stdout.String() == "" && !strings.ContainsAny(line, ">|") {
				t.Fatalf("%s (%s) printed nothing\nstderr:\n%s", ex.line, ex.where, stderr.String())
			}
			// A key an example creates or rotates is used by id in the
			// examples after it.
			for verb, doc := range map[string]string{"mxctl apikey create ": docCreatedID, "mxctl apikey rotate ": docRotatedID} {
				if strings.Contains(ex.line, verb) {
					real := printedKeyID.FindStringSubmatch(stderr.String())
					if real == nil {
						t.Fatalf("%s printed no key id:\n%s", ex.line, stderr.String())
					}
					ids[doc] = real[1]
				}
			}
			if m := printedKeyID.FindStringSubmatch(ex.docOut); m != nil && m[1] != docCreatedID && m[1] != docRotatedID {
				t.Fatalf("%s shows key id %s; examples use %s (created) and %s (rotated)", ex.where, m[1], docCreatedID, docRotatedID)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "changes.jsonl")); errors.Is(err, os.ErrNotExist) {
		t.Fatal("the redirect example wrote no changes.jsonl")
	}
}
