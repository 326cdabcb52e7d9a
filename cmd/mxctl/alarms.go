package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/client"
)

// alarmRow is the JSON form of one alarm (alarms and ack).
type alarmRow struct {
	Reference   string `json:"reference"`
	State       string `json:"state"`
	Priority    uint32 `json:"priority"`
	Severity    uint32 `json:"severity"`
	Area        string `json:"area,omitempty"`
	Kind        string `json:"limit_kind,omitempty"`
	Description string `json:"description,omitempty"`
	Value       string `json:"value,omitempty"`
	Limit       string `json:"limit,omitempty"`
	Mode        string `json:"mode"`
	Instance    uint64 `json:"instance"`
	TimeOn      string `json:"time_alarm_on"`
	AckOperator string `json:"ack_operator,omitempty"`
	AckComment  string `json:"ack_comment,omitempty"`
}

func enumName(s, prefix string) string { return strings.ToLower(strings.TrimPrefix(s, prefix)) }

func alarmState(s mxgatewayv1.AlarmState) string {
	return strings.TrimPrefix(s.String(), "ALARM_STATE_")
}

func toAlarmRow(a *mxgatewayv1.Alarm) alarmRow {
	r := alarmRow{Reference: a.GetReference(), State: alarmState(a.GetState()), Priority: a.GetPriority(), Severity: a.GetSeverity(),
		Area: a.GetArea(), Kind: a.GetLimitKind(), Description: a.GetDescription(), Mode: enumName(a.GetMode().String(), "ALARM_MODE_"),
		Instance: a.GetInstance(), TimeOn: tsString(a.GetTimeAlarmOn().AsTime(), a.GetTimeAlarmOn() != nil),
		AckOperator: a.GetAckOperator(), AckComment: a.GetAckComment()}
	if a.GetValue() != nil {
		r.Value = client.ValueFromProto(a.GetValue()).String()
	}
	if a.GetLimit() != nil {
		r.Limit = client.ValueFromProto(a.GetLimit()).String()
	}
	return r
}

// alarmFilterFlags are the filter flags of mxctl alarms.
type alarmFilterFlags struct {
	areas, prefixes, states stringList
	minPri, maxPri          uint
	text                    string
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

func (f *alarmFilterFlags) filter() (*mxgatewayv1.AlarmFilter, error) {
	out := &mxgatewayv1.AlarmFilter{AreaPrefixes: f.areas, ReferencePrefixes: f.prefixes, Text: f.text,
		MinPriority: uint32(f.minPri), MaxPriority: uint32(f.maxPri)}
	for _, s := range f.states {
		v, ok := mxgatewayv1.AlarmState_value["ALARM_STATE_"+strings.ToUpper(s)]
		if !ok || v == 0 {
			return nil, usageError(fmt.Sprintf("--state %q: want UNACK_ALM, ACK_ALM, UNACK_RTN or ACK_RTN", s))
		}
		out.States = append(out.States, mxgatewayv1.AlarmState(v))
	}
	return out, nil
}

func alarmsCmd() *command {
	cmd := &command{name: "alarms", summary: "watch the Galaxy's alarms live", usage: "[--list] [--json] [--duration D] [--area A] [--prefix P] [--state S] [--min-priority N] [--max-priority N] [--text T]",
		help: `Shows the gateway's active alarms (service Alarms, docs/alarms.md): on a
terminal a table updated in place (state, priority, severity, value,
raise time, acknowledgement); when standard output is not a terminal, or
with --json, one JSON object per feed message (snapshot, transition,
provider, gap). --list prints the active alarms once and exits. The feed
resumes by itself after a dropped connection. Needs scope alarms:read.

Filters (repeatable where it makes sense): --area and --prefix select by
area or reference prefix, --state by state (UNACK_ALM, ACK_ALM, UNACK_RTN,
ACK_RTN), --min-priority/--max-priority by native priority (1 is the most
urgent), --text by text in the reference, description or comment.

Examples:
  mxctl alarms
  mxctl alarms --list --json
  mxctl alarms --area TankFarm --state UNACK_ALM --duration 2s --json`}
	cmd.run = func(ctx context.Context, c *cli, args []string) int {
		var conn connFlags
		fs := c.flagSet(cmd, &conn)
		asJSON := fs.Bool("json", false, "print JSON even on a terminal")
		list := fs.Bool("list", false, "print the active alarms once and exit")
		duration := fs.Duration("duration", 0, "stop after this long (default: until Ctrl-C)")
		var ff alarmFilterFlags
		fs.Var(&ff.areas, "area", "area name prefix (repeatable)")
		fs.Var(&ff.prefixes, "prefix", "reference prefix (repeatable)")
		fs.Var(&ff.states, "state", "state: UNACK_ALM, ACK_ALM, UNACK_RTN or ACK_RTN (repeatable)")
		fs.UintVar(&ff.minPri, "min-priority", 0, "lowest priority number shown (1..999)")
		fs.UintVar(&ff.maxPri, "max-priority", 0, "highest priority number shown (1..999)")
		fs.StringVar(&ff.text, "text", "", "text in the reference, description or comment")
		pos, code, ok := c.parse(cmd, fs, args)
		if !ok {
			return code
		}
		if len(pos) != 0 {
			return c.fail(cmd.name, "", usageError("alarms takes no arguments (filters are flags)"))
		}
		filter, err := ff.filter()
		if err != nil {
			return c.fail(cmd.name, "", err)
		}
		cl, addr, err := c.dial(ctx, &conn)
		if err != nil {
			return c.fail(cmd.name, addr, err)
		}
		defer cl.Close()
		al := cl.Alarms()
		if *list {
			res, err := al.List(ctx, filter)
			if err != nil {
				return c.fail(cmd.name, addr, err)
			}
			if *asJSON {
				rows := make([]alarmRow, 0, len(res.Alarms))
				for _, a := range res.Alarms {
					rows = append(rows, toAlarmRow(a))
				}
				writeJSON(c.stdout, map[string]any{"sequence": res.Sequence, "alarms": rows})
				return exitOK
			}
			t := &alarmTable{rows: map[string]*mxgatewayv1.Alarm{}}
			for _, a := range res.Alarms {
				t.rows[strings.ToLower(a.GetReference())] = a
			}
			t.draw(c.stdout, false)
			return exitOK
		}
		if *duration < 0 {
			return c.fail(cmd.name, "", usageError("--duration must be positive"))
		}
		if *duration > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *duration)
			defer cancel()
		}
		tty := !*asJSON && isTerminal(c.stdout)
		t := &alarmTable{rows: map[string]*mxgatewayv1.Alarm{}}
		start, transitions := time.Now(), 0
		var tick <-chan time.Time
		if tty {
			tk := time.NewTicker(time.Second)
			defer tk.Stop()
			tick = tk.C
		}
		type msgOrErr struct {
			m   *mxgatewayv1.StreamAlarmsResponse
			err error
		}
		msgs := make(chan msgOrErr)
		fctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for m, err := range al.Feed(fctx, filter) {
				select {
				case msgs <- msgOrErr{m, err}:
				case <-fctx.Done():
					return
				}
			}
		}()
		defer func() { cancel(); <-done }()
		for {
			select {
			case <-ctx.Done():
				fmt.Fprintf(c.stderr, "mxctl alarms: %d transitions in %s, %d active\n", transitions, time.Since(start).Round(100*time.Millisecond), len(t.rows))
				return exitOK
			case <-tick:
				t.draw(c.stdout, true)
			case e := <-msgs:
				if e.err != nil {
					return c.fail(cmd.name, addr, e.err)
				}
				m := e.m
				switch {
				case m.GetSnapshot() != nil:
					t.rows[strings.ToLower(m.GetSnapshot().GetReference())] = m.GetSnapshot()
				case m.GetTransition() != nil:
					transitions++
					a := m.GetTransition().GetAlarm()
					if m.GetTransition().GetKind() == mxgatewayv1.AlarmTransitionKind_ALARM_TRANSITION_KIND_REMOVED {
						delete(t.rows, strings.ToLower(a.GetReference()))
					} else {
						t.rows[strings.ToLower(a.GetReference())] = a
					}
				case m.GetProvider() != nil:
					t.provider = m.GetProvider()
				case m.GetGap() != nil:
					fmt.Fprintf(c.stderr, "mxctl alarms: replay gap (%s); reloading the active alarms\n", m.GetGap().GetReason())
					if res, err := al.List(ctx, filter); err == nil {
						t.rows = map[string]*mxgatewayv1.Alarm{}
						for _, a := range res.Alarms {
							t.rows[strings.ToLower(a.GetReference())] = a
						}
					}
				}
				if tty {
					if m.GetSnapshot() == nil {
						t.draw(c.stdout, true)
					}
					continue
				}
				writeJSON(c.stdout, feedRow(m))
			}
		}
	}
	return cmd
}

// feedRow is the JSON form of one feed message.
func feedRow(m *mxgatewayv1.StreamAlarmsResponse) map[string]any {
	out := map[string]any{"seq": m.GetSequence()}
	switch {
	case m.GetSnapshot() != nil:
		out["snapshot"] = toAlarmRow(m.GetSnapshot())
	case m.GetSnapshotComplete() != nil:
		out["snapshot_complete"] = map[string]any{"count": m.GetSnapshotComplete().GetCount()}
	case m.GetTransition() != nil:
		tr := m.GetTransition()
		out["transition"] = map[string]any{"kind": enumName(tr.GetKind().String(), "ALARM_TRANSITION_KIND_"),
			"previous": alarmState(tr.GetPrevious()), "alarm": toAlarmRow(tr.GetAlarm())}
	case m.GetProvider() != nil:
		p := m.GetProvider()
		out["provider"] = map[string]any{"provider": enumName(p.GetProvider().String(), "ALARM_PROVIDER_"), "healthy": p.GetHealthy(),
			"detail": p.GetDetail(), "watched": p.GetWatched(), "deploy_sequence": p.GetDeploySequence()}
	case m.GetGap() != nil:
		g := m.GetGap()
		out["gap"] = map[string]any{"requested_after": g.GetRequestedAfterSequence(), "first_available": g.GetFirstAvailableSequence(), "reason": g.GetReason()}
	}
	return out
}

// alarmTable is the live table of mxctl alarms.
type alarmTable struct {
	rows     map[string]*mxgatewayv1.Alarm
	provider *mxgatewayv1.AlarmProviderStatus
	drawn    int
}

func (t *alarmTable) draw(out io.Writer, inPlace bool) {
	list := make([]*mxgatewayv1.Alarm, 0, len(t.rows))
	for _, a := range t.rows {
		list = append(list, a)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].GetPriority() != list[j].GetPriority() {
			return list[i].GetPriority() < list[j].GetPriority()
		}
		return list[i].GetReference() < list[j].GetReference()
	})
	var b strings.Builder
	if t.provider != nil {
		health := "healthy"
		if !t.provider.GetHealthy() {
			health = "not healthy"
		}
		fmt.Fprintf(&b, "provider %s, %s: %s\n", enumName(t.provider.GetProvider().String(), "ALARM_PROVIDER_"), health, t.provider.GetDetail())
	}
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REFERENCE\tSTATE\tPRIO\tSEV\tVALUE\tLIMIT\tRAISED\tACKED BY\tCOMMENT")
	for _, a := range list {
		r := toAlarmRow(a)
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Reference, r.State, r.Priority, r.Severity, cell(dash(r.Value)),
			dash(r.Limit), r.TimeOn, dash(r.AckOperator), cell(dash(r.AckComment)))
	}
	tw.Flush()
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	var o strings.Builder
	if inPlace && t.drawn > 0 {
		fmt.Fprintf(&o, "\x1b[%dA\x1b[J", t.drawn)
	}
	for _, l := range lines {
		if inPlace {
			o.WriteString("\r\x1b[2K")
		}
		o.WriteString(l)
		o.WriteString("\n")
	}
	t.drawn = len(lines)
	_, _ = io.WriteString(out, o.String())
}

func ackCmd() *command {
	cmd := &command{name: "ack", summary: "acknowledge an alarm", usage: "REFERENCE [--comment TEXT] [--instance N] [--user U [--verifier V]] [--json]",
		help: `Acknowledges the alarm REFERENCE (an alarm attribute such as
Tank1.HighLevel) through the gateway's alarm monitor: the comment is written
to its AckMsg (at most 256 characters). --instance acknowledges only that
raise instance (the instance column of mxctl alarms --json): an alarm raised
again since is refused (FAILED_PRECONDITION, ALARM_INSTANCE_STALE). --user
acknowledges as a Galaxy user (a secured acknowledgement), --verifier adds
the verifying user; their passwords come from MXCTL_PASSWORD and
MXCTL_VERIFIER_PASSWORD, a prompt on a terminal, or standard input, never
from the command line. Needs scope alarms:ack.

Examples:
  mxctl ack Tank1.HighLevel --comment "level checked"
  MXCTL_PASSWORD=operator1 mxctl ack Valve1.Position.HiHi --user operator --comment "valve closed"`}
	cmd.run = func(ctx context.Context, c *cli, args []string) int {
		var conn connFlags
		fs := c.flagSet(cmd, &conn)
		comment := fs.String("comment", "", "the acknowledgement comment (AckMsg)")
		instance := fs.Uint64("instance", 0, "acknowledge only this raise instance")
		user := fs.String("user", "", "Galaxy user to acknowledge as")
		verifier := fs.String("verifier", "", "verifying Galaxy user (with --user)")
		asJSON := fs.Bool("json", false, "print the outcome as JSON")
		pos, code, ok := c.parse(cmd, fs, args)
		if !ok {
			return code
		}
		if len(pos) != 1 {
			return c.fail(cmd.name, "", usageError("give one alarm reference, for example: mxctl ack Tank1.HighLevel --comment checked"))
		}
		if *verifier != "" && *user == "" {
			return c.fail(cmd.name, "", usageError("--verifier needs --user"))
		}
		opts := []client.AckOption{client.Comment(*comment), client.Instance(*instance)}
		lines := newLineReader(c.stdin)
		if *user != "" {
			pw, err := c.password("MXCTL_PASSWORD", "Password for "+*user+": ", lines)
			if err != nil {
				return c.fail(cmd.name, "", err)
			}
			opts = append(opts, client.AckAs(*user, pw))
		}
		if *verifier != "" {
			vpw, err := c.password("MXCTL_VERIFIER_PASSWORD", "Password for verifier "+*verifier+": ", lines)
			if err != nil {
				return c.fail(cmd.name, "", err)
			}
			opts = append(opts, client.VerifiedBy(*verifier, vpw))
		}
		cl, addr, err := c.dial(ctx, &conn)
		if err != nil {
			return c.fail(cmd.name, addr, err)
		}
		defer cl.Close()
		rep, err := cl.Alarms().Acknowledge(ctx, pos[0], opts...)
		if err != nil {
			return c.fail(cmd.name, addr, err)
		}
		if *asJSON {
			writeJSON(c.stdout, map[string]any{"reference": pos[0], "acked_at": tsString(rep.GetAckedAt().AsTime(), rep.GetAckedAt() != nil),
				"instance": rep.GetAlarm().GetInstance(), "status": client.StatusString(rep.GetStatus())})
			return exitOK
		}
		fmt.Fprintf(c.stdout, "%s acknowledged (instance %d) at %s\n", pos[0], rep.GetAlarm().GetInstance(),
			tsString(rep.GetAckedAt().AsTime(), rep.GetAckedAt() != nil))
		return exitOK
	}
	return cmd
}
