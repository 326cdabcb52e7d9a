package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// fence is one fenced block of a Markdown file.
type fence struct {
	lang, body string
}

// fences returns the fenced blocks of text, in order.
func fences(text string) []fence {
	var out []fence
	var cur *fence
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			if cur == nil {
				cur, lines = &fence{lang: strings.TrimPrefix(line, "```")}, nil
				continue
			}
			cur.body = strings.Join(lines, "\n")
			out = append(out, *cur)
			cur = nil
			continue
		}
		if cur != nil {
			lines = append(lines, line)
		}
	}
	return out
}

// grpcurlBinary builds the grpcurl pinned in tools/go.mod.
func grpcurlBinary(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "grpcurl")
	cmd := exec.Command("go", "build", "-modfile=tools/go.mod", "-o", out, "github.com/fullstorydev/grpcurl/cmd/grpcurl")
	cmd.Dir = "../.."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build grpcurl: %v\n%s", err, b)
	}
	return out
}

// pinnedVersion returns the version of module in tools/go.mod.
func pinnedVersion(t *testing.T, module string) string {
	t.Helper()
	b, err := os.ReadFile("../../tools/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(module) + ` (v\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("tools/go.mod does not pin %s", module)
	}
	return string(m[1])
}

// protoObjects decodes grpcurl's output, a sequence of JSON objects, into
// messages made by newMsg.
func protoObjects[M proto.Message](t *testing.T, out string, newMsg func() M) []M {
	t.Helper()
	var msgs []M
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return msgs // a partial object at the end of a stream still being written
		}
		m := newMsg()
		if err := protojson.Unmarshal(raw, m); err != nil {
			t.Fatalf("grpcurl printed %s: %v", raw, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// TestReadmeQuickstart runs the README's grpcurl section as written, with the
// grpcurl pinned in tools/go.mod and jq, against a real gateway (its address
// and data directory put in place of the defaults), and checks what the
// README says each step does. The event stream of "a second terminal" runs
// in the background.
func TestReadmeQuickstart(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("jq"); err != nil {
		requireTool(t, "jq", err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "### A first session with grpcurl")
	if !ok {
		t.Fatal("README.md has no grpcurl section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	blocks := fences(section)

	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	grpcurlBinary(t, bin)
	g := harness.Start(t)
	env := append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+dir)
	subst := strings.NewReplacer("~/.local/state/mxgateway", g.DataDir, "127.0.0.1:5000", g.GRPCAddr)
	state := filepath.Join(dir, "state")
	// script runs one block in a fresh bash, carrying KEY and SID over from
	// the blocks before it, as one terminal session would.
	// The background terminal (readOnly) reads KEY and SID but never writes
	// them back: it ends when the session closes, and its write would race
	// the test's read of SID after CloseSession.
	shell := func(body string, save bool) string {
		out := fmt.Sprintf(`set -euo pipefail
KEY=$(cat %[1]s/KEY 2>/dev/null || true); SID=$(cat %[1]s/SID 2>/dev/null || true)
%[2]s
`, state, subst.Replace(body))
		if save {
			out += fmt.Sprintf(`printf %%s "${KEY:-}" > %[1]s/KEY; printf %%s "${SID:-}" > %[1]s/SID
`, state)
		}
		return out
	}
	script := func(body string) string { return shell(body, true) }
	readOnly := func(body string) string { return shell(body, false) }
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	run := func(body string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), step)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "-c", script(body))
		cmd.Dir, cmd.Env = dir, env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("README block failed: %v\n%s\nstdout:\n%s\nstderr:\n%s", err, body, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	replies := func(out string) []*mxgatewayv1.Reply {
		var rs []*mxgatewayv1.Reply
		for _, r := range protoObjects(t, out, func() *mxgatewayv1.InvokeResponse { return &mxgatewayv1.InvokeResponse{} }) {
			rs = append(rs, r.GetReply())
		}
		return rs
	}

	var events harness.Buffer
	var stream *exec.Cmd
	streamDone := make(chan error, 1)
	waitEvent := func(what string, match func(*mxgatewayv1.Event) bool) {
		t.Helper()
		eventually(t, what, func() error {
			for _, r := range protoObjects(t, events.String(), func() *mxgatewayv1.StreamEventsResponse { return &mxgatewayv1.StreamEventsResponse{} }) {
				if match(r.GetEvent()) {
					return nil
				}
			}
			return fmt.Errorf("not among the streamed events:\n%s", events.String())
		})
	}
	ran := map[string]bool{}
	for i, b := range blocks {
		if b.lang != "sh" {
			continue
		}
		switch body := b.body; {
		case strings.Contains(body, "go install "):
			// Installation: the version is the pinned one, and jq is what
			// .ci/run installs.
			want := "github.com/fullstorydev/grpcurl/cmd/grpcurl@" + pinnedVersion(t, "github.com/fullstorydev/grpcurl")
			if !strings.Contains(body, want) {
				t.Fatalf("README installs grpcurl with %q, tools/go.mod pins %s", body, want)
			}
			if !slices.Contains(ciPackages(t), "jq") || !strings.Contains(body, "apt-get install jq") {
				t.Fatal("README's jq install and .ci/run disagree")
			}
			ran["install"] = true
		case strings.HasSuffix(strings.TrimSpace(body), " list"):
			out := run(body)
			if i+1 >= len(blocks) || blocks[i+1].lang != "" {
				t.Fatal("README: no output block after grpcurl list")
			}
			if got, want := strings.Fields(out), strings.Fields(blocks[i+1].body); !slices.Equal(got, want) {
				t.Fatalf("grpcurl list prints %q, README shows %q", got, want)
			}
			ran["list"] = true
		case strings.Contains(body, "Gateway/OpenSession"):
			run(body)
			sid, _ := os.ReadFile(filepath.Join(state, "SID"))
			if len(sid) != 32 {
				t.Fatalf("SID = %q after the OpenSession block", sid)
			}
			ran["open"] = true
		case strings.Contains(body, "Gateway/StreamEvents"):
			stream = exec.Command("bash", "-c", readOnly(body))
			stream.Dir, stream.Env = dir, env
			stream.Stdout, stream.Stderr = &events, &events
			if err := stream.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() {
				streamDone <- stream.Wait()
				close(exited)
			}()
			t.Cleanup(func() {
				// Wait sets ProcessState on its own goroutine: whether the
				// stream has ended is read from exited, never from stream.
				select {
				case <-exited:
				default:
					_ = stream.Process.Kill()
					<-exited
				}
			})
			ran["stream"] = true
		case strings.Contains(body, `"register"`):
			rs := replies(run(body))
			if len(rs) != 3 || rs[0].GetRegister().GetServerHandle() != 2 || rs[1].GetItemHandle().GetItemHandle() != 1 ||
				rs[2].GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK {
				t.Fatalf("register, add_item, advise: %v (the README promises server handle 2 and item handle 1)", rs)
			}
			waitEvent("the first value of TIC101.SP", dataChangeOf(2, 1))
			ran["advise"] = true
		case strings.Contains(body, `"write"`):
			rs := replies(run(body))
			if len(rs) != 1 || rs[0].GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK {
				t.Fatalf("write: %v", rs)
			}
			waitEvent("OnWriteComplete", func(e *mxgatewayv1.Event) bool {
				w := e.GetWriteComplete()
				return w.GetItemHandle() == 1 && len(w.GetStatuses()) > 0 && w.GetStatuses()[0].GetSuccess()
			})
			waitEvent("72.5", func(e *mxgatewayv1.Event) bool {
				return dataChangeOf(2, 1)(e) && e.GetDataChange().GetValue().GetDoubleValue() == 72.5
			})
			ran["write"] = true
		case strings.Contains(body, `"read_bulk"`):
			rs := replies(run(body))
			if len(rs) != 1 || rs[0].GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_BULK {
				t.Fatalf("read_bulk: %v, the README promises GATEWAY_STATUS_CODE_BULK", rs)
			}
			got := rs[0].GetReadBulk().GetEntries()
			if len(got) != 2 || !got[0].GetWasCached() || got[0].GetValue().GetDoubleValue() != 72.5 || got[1].GetWasCached() || got[1].GetTimedOut() {
				t.Fatalf("ReadBulk: %v", got)
			}
			ran["read"] = true
		case strings.Contains(body, "Gateway/CloseSession"):
			out := run(body)
			sid, _ := os.ReadFile(filepath.Join(state, "SID"))
			dec := json.NewDecoder(strings.NewReader(out))
			var list mxgatewayv1.ListSessionsResponse
			var closed mxgatewayv1.CloseSessionResponse
			var raw1, raw2 json.RawMessage
			if dec.Decode(&raw1) != nil || dec.Decode(&raw2) != nil || protojson.Unmarshal(raw1, &list) != nil || protojson.Unmarshal(raw2, &closed) != nil {
				t.Fatalf("ListSessions and CloseSession printed:\n%s", out)
			}
			if len(list.GetSessions()) != 1 || list.GetSessions()[0].GetSessionId() != string(sid) ||
				closed.GetState() != mxgatewayv1.SessionState_SESSION_STATE_CLOSED {
				t.Fatalf("ListSessions %v, CloseSession %v", &list, &closed)
			}
			// The event stream ends, and grpcurl with it, without an error.
			select {
			case err := <-streamDone:
				if err != nil {
					t.Fatalf("the event stream ended with %v after CloseSession:\n%s", err, events.String())
				}
			case <-time.After(step):
				t.Fatal("the event stream did not end after CloseSession")
			}
			ran["close"] = true
		default:
			t.Fatalf("README block this test does not know:\n%s", body)
		}
	}
	for _, want := range []string{"install", "list", "open", "stream", "advise", "write", "read", "close"} {
		if !ran[want] {
			t.Errorf("README: no %s step found", want)
		}
	}
}
