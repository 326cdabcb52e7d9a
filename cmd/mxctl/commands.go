package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/internal/buildinfo"
)

func healthCmd() *command {
	cmd := &command{name: "health", summary: "check that the gateway is up and serving", usage: "[--json]",
		help: `Asks the gateway's grpc.health.v1 service. Exits 0 when it is SERVING.

Examples:
  mxctl health
  mxctl health --json
  mxctl health --addr 127.0.0.1:5000

For a remote gateway with TLS, add --addr HOST:PORT and --ca-file FILE.`}
	cmd.run = func(ctx context.Context, c *cli, args []string) int {
		var conn connFlags
		fs := c.flagSet(cmd, &conn)
		asJSON := fs.Bool("json", false, "print JSON")
		pos, code, ok := c.parse(cmd, fs, args)
		if !ok {
			return code
		}
		if len(pos) != 0 {
			return c.fail(cmd.name, "", usageError("health takes no arguments"))
		}
		cl, addr, err := c.dial(ctx, &conn)
		if err != nil {
			return c.fail(cmd.name, addr, err)
		}
		defer cl.Close()
		h, err := cl.Health(ctx)
		if err != nil {
			return c.fail(cmd.name, addr, err)
		}
		if *asJSON {
			writeJSON(c.stdout, map[string]any{"address": addr, "status": h.Status, "serving": h.Serving})
		} else {
			fmt.Fprintf(c.stdout, "%s %s\n", addr, h.Status)
		}
		if !h.Serving {
			return exitFailed
		}
		return exitOK
	}
	return cmd
}

func sessionsCmd() *command {
	cmd := &command{name: "sessions", summary: "list sessions (all of them with an admin key)", usage: "[--json]",
		help: `Lists the gateway's sessions: id, state, worker pid, client name, owner key,
subscribers, last event sequence, commands and backend. An admin key sees
every session, other keys their own.

Examples:
  mxctl sessions
  mxctl sessions --json | jq '.[].state'`}
	cmd.run = func(ctx context.Context, c *cli, args []string) int {
		var conn connFlags
		fs := c.flagSet(cmd, &conn)
		asJSON := fs.Bool("json", false, "print JSON")
		pos, code, ok := c.parse(cmd, fs, args)
		if !ok {
			return code
		}
		if len(pos) != 0 {
			return c.fail(cmd.name, "", usageError("sessions takes no arguments"))
		}
		cl, addr, err := c.dial(ctx, &conn)
		if err != nil {
			return c.fail(cmd.name, addr, err)
		}
		defer cl.Close()
		list, err := cl.ListSessions(ctx)
		if err != nil {
			return c.fail(cmd.name, addr, err)
		}
		if *asJSON {
			out := make([]map[string]any, 0, len(list))
			for _, s := range list {
				out = append(out, map[string]any{
					"session_id": s.GetSessionId(), "state": stateName(s.GetState()), "worker_pid": s.GetWorkerPid(),
					"client_name": s.GetClientName(), "owner_key_id": s.GetOwnerKeyId(), "opened_at": tsString(s.GetOpenedAt().AsTime(), s.GetOpenedAt() != nil),
					"subscribers": s.GetSubscribers(), "last_sequence": s.GetLastSequence(), "commands_completed": s.GetCommandsCompleted(),
					"commands_pending": s.GetCommandsPending(), "fault_reason": s.GetFaultReason(), "backend": s.GetBackend().GetKind(),
				})
			}
			writeJSON(c.stdout, out)
			return exitOK
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SESSION\tSTATE\tPID\tCLIENT\tKEY\tOPENED\tSUBS\tLAST SEQ\tCMDS\tPENDING\tBACKEND")
		for _, s := range list {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", s.GetSessionId(), stateName(s.GetState()), s.GetWorkerPid(),
				dash(s.GetClientName()), dash(s.GetOwnerKeyId()), tsString(s.GetOpenedAt().AsTime(), s.GetOpenedAt() != nil),
				s.GetSubscribers(), s.GetLastSequence(), s.GetCommandsCompleted(), s.GetCommandsPending(), dash(s.GetBackend().GetKind()))
		}
		tw.Flush()
		return exitOK
	}
	return cmd
}

func stateName(s mxgatewayv1.SessionState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SESSION_STATE_"))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func tsString(t time.Time, set bool) string {
	if !set || t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func writeJSON(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(w, "%s\n", b)
}

// readRow is the JSON form of one value (read and subscribe).
type readRow struct {
	Sequence    uint64       `json:"seq,omitempty"`
	Reference   string       `json:"reference"`
	Value       client.Value `json:"value"`
	Type        string       `json:"type"`
	Quality     uint16       `json:"quality"`
	QualityText string       `json:"quality_text"`
	Timestamp   string       `json:"timestamp"`
	Cached      *bool        `json:"cached,omitempty"`
	OK          bool         `json:"ok"`
	Error       string       `json:"error,omitempty"`
}

func typeName(v client.Value) string {
	if v.IsArray() {
		return client.DataTypeName(v.DataType()) + "[]"
	}
	return client.DataTypeName(v.DataType())
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	msg, _ := describe("", "", err)
	return msg
}

func readCmd() *command {
	cmd := &command{name: "read", summary: "read the current value of references", usage: "REF... [--json]",
		help: `Reads each reference once (ReadBulk: a transient add/advise/first value/
unadvise/remove on a new session) and prints value, data type, quality,
timestamp and status. Exits 1 when any reference failed (unknown reference,
failure status, timeout).

Examples:
  mxctl read TIC101.PV
  mxctl read TIC101.PV Tank1.Level Line1.Recipe[] --json`}
	cmd.run = func(ctx context.Context, c *cli, args []string) int {
		var conn connFlags
		fs := c.flagSet(cmd, &conn)
		asJSON := fs.Bool("json", false, "print JSON lines, one per reference")
		pos, code, ok := c.parse(cmd, fs, args)
		if !ok {
			return code
		}
		if len(pos) == 0 {
			return c.fail(cmd.name, "", usageError("give at least one reference, for example: mxctl read TIC101.PV"))
		}
		cl, addr, err := c.dial(ctx, &conn)
		if err != nil {
			return c.fail(cmd.name, addr, err)
		}
		defer cl.Close()
		s, err := cl.OpenSession(ctx, "mxctl read")
		if err != nil {
			return c.fail(cmd.name, addr, err)
		}
		res, err := s.Read(ctx, pos...)
		if err != nil {
			return c.fail(cmd.name, addr, err)
		}
		exit := exitOK
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		if !*asJSON {
			fmt.Fprintln(tw, "REFERENCE\tVALUE\tTYPE\tQUALITY\tTIMESTAMP\tSTATUS")
		}
		for i, r := range res {
			ref := nonEmpty(r.ItemDefinition, pos[i])
			rerr := r.Err()
			if rerr != nil {
				exit = exitFailed
			}
			if *asJSON {
				cached := r.WasCached
				writeJSON(c.stdout, readRow{Reference: ref, Value: r.Value, Type: typeName(r.Value), Quality: uint16(r.Quality),
					QualityText: r.Quality.String(), Timestamp: tsString(r.Timestamp, true), Cached: &cached, OK: rerr == nil, Error: errText(rerr)})
				continue
			}
			st := "ok"
			if rerr != nil {
				st = statusText(rerr)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ref, cell(r.Value.String()), typeName(r.Value), r.Quality, tsString(r.Timestamp, true), st)
		}
		tw.Flush()
		return exit
	}
	return cmd
}

// statusText is the short status cell of a failed entry.
func statusText(err error) string {
	msg := errText(err)
	// "mxaccess OnDataChange TIC.X failed: MxCategory..." -> keep from the cause.
	if i := strings.Index(msg, "failed: "); i >= 0 {
		return msg[i+len("failed: "):]
	}
	return msg
}

// cell keeps a table cell on one line and reasonably short.
func cell(s string) string {
	s = strings.NewReplacer("\n", `\n`, "\t", `\t`, "\r", `\r`).Replace(s)
	if r := []rune(s); len(r) > 60 {
		return string(r[:57]) + "..."
	}
	return s
}

func versionCmd() *command {
	cmd := &command{name: "version", summary: "print the mxctl version", usage: "[--json]",
		help: `Prints the version, commit, Go version and platform of this mxctl.`}
	cmd.run = func(ctx context.Context, c *cli, args []string) int {
		fs := c.flagSet(cmd, nil)
		asJSON := fs.Bool("json", false, "print JSON")
		if _, code, ok := c.parse(cmd, fs, args); !ok {
			return code
		}
		if *asJSON {
			writeJSON(c.stdout, buildinfo.Get())
		} else {
			fmt.Fprintln(c.stdout, "mxctl", buildinfo.Get())
		}
		return exitOK
	}
	return cmd
}
