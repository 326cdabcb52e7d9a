package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mxgateway/mxgateway/api/mxgateway/v1/subject"
	"github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/client/shared"
	"golang.org/x/term"
)

func subscribeCmd() *command {
	cmd := &command{name: "subscribe", summary: "watch references change live", usage: "REF... [--json] [--duration D] [--conflate] [--deadband X] [--deadband-percent P] [--min-interval D] [--shared [--nats-url URL] [--galaxy G]]",
		help: `Subscribes to each reference (Register + SubscribeBulk) and shows every
OnDataChange. On a terminal it draws a table updated in place: value,
quality, timestamp and age. When standard output is not a terminal, or with
--json, it prints one JSON object per change. The stream resumes by itself
after a dropped connection; a replay gap is reported, never hidden. When the
gateway loses the session (a gateway restart, an expired lease, a faulted
worker), mxctl opens a new one, subscribes again and says so on standard
error; values may have been missed meanwhile. Ctrl-C (or --duration) ends it
cleanly with a summary on standard error. A bad reference (unknown to the
Galaxy, or refused) is reported on standard error and makes the exit code 1;
when every reference is bad, mxctl stops at once.

Non-parity filters, applied by the gateway to this subscriber only:
--conflate asks for only the latest value per item when mxctl falls behind;
--deadband X skips a numeric change smaller than X from the last value
shown, --deadband-percent P one smaller than P % of it; --min-interval D
shows at most one value per item per D (the latest, once D has passed).

--shared subscribes through the gateway's NATS server instead (docs/nats.md):
the gateway advises each reference once for every consumer, and mxctl
starts with the last known value. --nats-url (MXGATEWAY_NATS_URL, default
nats://127.0.0.1:4222) and --galaxy (the gateway's nats_galaxy) name it;
the API key is the same as for gRPC. The gRPC-only filters do not apply.

Examples:
  mxctl subscribe TIC101.PV Tank2.Level
  mxctl subscribe TIC101.PV --duration 5s --json > changes.jsonl
  mxctl subscribe TIC101.PV --conflate --duration 3s
  mxctl subscribe Tank2.Level TIC101.PV --deadband 2.5 --min-interval 2s --duration 5s
  mxctl subscribe TIC101.PV --shared --duration 3s --json`}
	cmd.run = func(ctx context.Context, c *cli, args []string) int {
		var conn connFlags
		fs := c.flagSet(cmd, &conn)
		asJSON := fs.Bool("json", false, "print JSON lines even on a terminal")
		duration := fs.Duration("duration", 0, "stop after this long (default: until Ctrl-C)")
		conflate := fs.Bool("conflate", false, "deliver only the latest value per item when behind (non-parity)")
		deadband := fs.Float64("deadband", 0, "skip numeric changes smaller than this (non-parity)")
		deadbandPct := fs.Float64("deadband-percent", 0, "skip numeric changes smaller than this percentage of the last value (non-parity)")
		minInterval := fs.Duration("min-interval", 0, "at most one value per item per interval (non-parity)")
		var sf sharedFlags
		fs.BoolVar(&sf.on, "shared", false, "subscribe through the gateway's NATS server (docs/nats.md)")
		fs.StringVar(&sf.url, "nats-url", "", "the gateway's NATS server with --shared (env "+envNATSURL+", default "+shared.DefaultURL+")")
		fs.StringVar(&sf.galaxy, "galaxy", "", "the gateway's nats_galaxy with --shared (default "+subject.DefaultGalaxy+")")
		pos, code, ok := c.parse(cmd, fs, args)
		if !ok {
			return code
		}
		if len(pos) == 0 {
			return c.fail(cmd.name, "", usageError("give at least one reference, for example: mxctl subscribe TIC101.PV"))
		}
		if *duration < 0 {
			return c.fail(cmd.name, "", usageError("--duration must be positive"))
		}
		if *deadband < 0 || *deadbandPct < 0 || *deadbandPct > 100 || *minInterval < 0 || *minInterval > time.Hour {
			return c.fail(cmd.name, "", usageError("need --deadband >= 0, --deadband-percent from 0 to 100 and --min-interval from 0 to 1h"))
		}
		if sf.on {
			if *conflate || *deadband != 0 || *deadbandPct != 0 || *minInterval != 0 {
				return c.fail(cmd.name, "", usageError("--conflate, --deadband, --deadband-percent and --min-interval apply to gRPC subscriptions only, not with --shared"))
			}
			return subscribeShared(ctx, c, &conn, &sf, pos, *asJSON, *duration)
		}
		cl, addr, err := c.dial(ctx, &conn)
		if err != nil {
			return c.fail(cmd.name, addr, err)
		}
		defer cl.Close()
		s, err := cl.OpenSession(ctx, "mxctl subscribe", client.Recovering())
		if err != nil {
			return c.fail(cmd.name, addr, err)
		}
		hLMX, err := s.ServerHandle(ctx)
		if err != nil {
			return c.fail(cmd.name, addr, err)
		}
		entries, err := s.Subscribe(ctx, pos...)
		if err != nil {
			return c.fail(cmd.name, addr, err)
		}
		exit := exitOK
		w := &watch{rows: map[int32]*watchRow{}}
		for i, e := range entries {
			if err := e.Err(); err != nil {
				fmt.Fprintf(c.stderr, "mxctl subscribe: %s: %s\n", pos[i], errText(err))
				exit = exitFailed
				w.bad++
				continue
			}
			if _, dup := w.rows[e.ItemHandle]; dup {
				continue
			}
			r := &watchRow{ref: pos[i]}
			w.rows[e.ItemHandle] = r
			w.order = append(w.order, r)
		}
		if len(w.order) == 0 {
			return exit
		}
		if *duration > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *duration)
			defer cancel()
		}
		tty := !*asJSON && isTerminal(c.stdout)
		var opts []client.EventsOption
		if *conflate {
			opts = append(opts, client.Conflate())
		}
		if *deadband != 0 || *deadbandPct != 0 || *minInterval != 0 {
			opts = append(opts, client.Filter(client.EventFilter{AbsoluteDeadband: *deadband, PercentDeadband: *deadbandPct, MinInterval: *minInterval}))
		}
		start := time.Now()
		code = w.loop(ctx, c, s, hLMX, tty, opts)
		if code > exit {
			exit = code
		}
		if w.bad > 0 && exit == exitOK {
			exit = exitFailed
		}
		summary := fmt.Sprintf("mxctl subscribe: %d updates for %d references in %s, %d replay gaps",
			w.updates, len(w.order), time.Since(start).Round(100*time.Millisecond), w.gaps)
		if w.recreated > 0 {
			summary += fmt.Sprintf(", %d %s recreated", w.recreated, plural(w.recreated, "session", "sessions"))
		}
		if w.bad > 0 {
			summary += fmt.Sprintf(", %d bad %s", w.bad, plural(w.bad, "reference", "references"))
		}
		fmt.Fprintln(c.stderr, summary)
		return exit
	}
	return cmd
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

type watchRow struct {
	ref     string
	dc      *client.DataChange
	updates int
	bad     bool // the first value said the reference is unknown or refused
}

type watch struct {
	rows      map[int32]*watchRow
	order     []*watchRow
	updates   int
	gaps      int
	recreated int // sessions the gateway lost and mxctl opened again
	bad       int // bad references
	badRows   int // rows whose first value said the reference is bad
	drawn     int // lines drawn last time on a terminal
}

type evOrErr struct {
	ev  client.Event
	err error
}

// loop consumes events until ctx ends. On a terminal it also redraws once a
// second so ages stay current; the event reader runs in one goroutine that
// loop starts and waits for.
func (w *watch) loop(ctx context.Context, c *cli, s *client.Session, hLMX int32, tty bool, opts []client.EventsOption) int {
	ctx, cancel := context.WithCancel(ctx)
	events := make(chan evOrErr)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev, err := range s.Events(ctx, opts...) {
			select {
			case events <- evOrErr{ev, err}:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() { cancel(); <-done }()
	var tick <-chan time.Time
	if tty {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
		w.draw(c.stdout, termWidth(c.stdout))
	}
	for {
		select {
		case <-ctx.Done():
			return exitOK
		case <-tick:
			w.draw(c.stdout, termWidth(c.stdout))
		case e := <-events:
			if e.err != nil {
				return c.fail("subscribe", "", e.err)
			}
			if m := e.ev.Recreated(); m != nil {
				w.recreated++
				fmt.Fprintf(c.stderr, "mxctl subscribe: the gateway lost the session (%s); subscribed again in a new session: values may have been missed\n",
					nonEmpty(client.GatewayReason(m.Cause), errText(m.Cause)))
				for _, warn := range m.Warnings {
					fmt.Fprintf(c.stderr, "mxctl subscribe: while subscribing again: %s\n", warn)
				}
				if !tty {
					writeJSON(c.stdout, map[string]any{"recreated": map[string]any{"old_session": m.OldSessionID, "new_session": m.NewSessionID,
						"reason": client.GatewayReason(m.Cause), "warnings": m.Warnings}})
				}
				continue
			}
			if g := e.ev.Gap(); g != nil {
				w.gaps++
				fmt.Fprintf(c.stderr, "mxctl subscribe: replay gap: %d events lost (%s); values shown may have skipped changes\n", g.Missed(), g.Reason)
				if !tty {
					writeJSON(c.stdout, map[string]any{"seq": e.ev.Sequence(), "gap": map[string]any{
						"requested_after": g.RequestedAfter, "first_available": g.FirstAvailable, "missed": g.Missed(), "reason": g.Reason}})
				}
				continue
			}
			dc := e.ev.DataChange()
			if dc == nil || dc.ServerHandle != hLMX {
				continue
			}
			r, ok := w.rows[dc.ItemHandle]
			if !ok {
				continue
			}
			first := r.updates == 0
			r.dc = dc
			r.updates++
			w.updates++
			derr := dc.Err()
			var me *client.MxAccessError
			if errors.As(derr, &me) {
				me.Reference = r.ref
				if first && !r.bad && (me.IsConfigurationError() || me.IsSecurityError()) {
					// Like read: an unknown reference is an error, reported
					// once; the others keep running.
					r.bad = true
					w.bad++
					w.badRows++
					fmt.Fprintf(c.stderr, "mxctl subscribe: %s: %s\n", r.ref, errText(derr))
				}
			}
			if tty {
				w.draw(c.stdout, termWidth(c.stdout))
			} else {
				writeJSON(c.stdout, readRow{Sequence: e.ev.Sequence(), Reference: r.ref, Value: dc.Value, Type: typeName(dc.Value),
					Quality: uint16(dc.Quality), QualityText: dc.Quality.String(), Timestamp: tsString(dc.Timestamp, true),
					OK: derr == nil, Error: errText(derr)})
			}
			if w.badRows == len(w.order) {
				return exitFailed // nothing left to watch
			}
		}
	}
}

// draw redraws the table in place (ANSI cursor-up and clear-line).
func (w *watch) draw(out io.Writer, width int) {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REFERENCE\tVALUE\tQUALITY\tTIMESTAMP\tAGE\tUPDATES\tSTATUS")
	now := time.Now()
	for _, r := range w.order {
		if r.dc == nil {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.ref, "…", "-", "-", "-", 0, "waiting")
			continue
		}
		st := "ok"
		var me *client.MxAccessError
		if errors.As(r.dc.Err(), &me) {
			st = client.StatusString(me.Statuses.FirstFailure()) + hint(me)
		}
		age := "-"
		if !r.dc.Timestamp.IsZero() {
			age = now.Sub(r.dc.Timestamp).Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.ref, cell(r.dc.Value.String()), r.dc.Quality, tsString(r.dc.Timestamp, true), age, r.updates, st)
	}
	tw.Flush()
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if width > 0 {
		// A wrapped line would break the cursor-up redraw.
		for i, l := range lines {
			if r := []rune(l); len(r) >= width {
				lines[i] = string(r[:width-1])
			}
		}
	}
	var o strings.Builder
	if w.drawn > 0 {
		fmt.Fprintf(&o, "\x1b[%dA", w.drawn)
	}
	for _, l := range lines {
		o.WriteString("\r\x1b[2K")
		o.WriteString(l)
		o.WriteString("\n")
	}
	w.drawn = len(lines)
	_, _ = io.WriteString(out, o.String())
}

// termWidth returns the terminal's width in columns, or 0 when unknown.
func termWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil {
			return cols
		}
	}
	return 0
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
