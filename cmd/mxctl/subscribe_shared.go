package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/mxgateway/mxgateway/api/mxgateway/v1/subject"
	"github.com/mxgateway/mxgateway/client/shared"
)

// envNATSURL names the gateway's NATS server for --shared.
const envNATSURL = "MXGATEWAY_NATS_URL"

// sharedFlags are subscribe's --shared options.
type sharedFlags struct {
	on     bool
	url    string
	galaxy string
}

// natsURL is --nats-url, else MXGATEWAY_NATS_URL, else the embedded
// server's default.
func (c *cli) natsURL(f *sharedFlags) string {
	switch {
	case f.url != "":
		return f.url
	case c.env(envNATSURL) != "":
		return c.env(envNATSURL)
	}
	return shared.DefaultURL
}

// subscribeShared is "mxctl subscribe --shared": the references' values
// through the gateway's NATS server (docs/nats.md), one advise shared by
// every consumer, printed as JSON lines (or one line per value on a
// terminal) until ctx ends.
func subscribeShared(ctx context.Context, c *cli, conn *connFlags, f *sharedFlags, refs []string, asJSON bool, duration time.Duration) int {
	const name = "subscribe"
	u := c.natsURL(f)
	host := ""
	if pu, err := url.Parse(u); err == nil {
		host = pu.Host
	}
	key, src := c.apiKey(conn, host)
	c.keySource = src
	opts := shared.Options{URL: u, APIKey: key, Galaxy: f.galaxy, CAFile: conn.caFile}
	dctx, cancel := context.WithTimeout(ctx, conn.timeout)
	sh, err := shared.Dial(dctx, opts)
	cancel()
	if err != nil {
		return c.fail(name, u, err)
	}
	defer sh.Close()
	tty := !asJSON && isTerminal(c.stdout)
	var mu sync.Mutex
	updates := 0
	print := func(v shared.Value) {
		mu.Lock()
		defer mu.Unlock()
		updates++
		if tty {
			fmt.Fprintf(c.stdout, "%-24s %-16s %-8s %s seq %d\n", v.Reference, v.Value.String(), v.Quality.String(), tsString(v.SourceTime, true), v.Sequence)
			return
		}
		writeJSON(c.stdout, readRow{Sequence: v.Sequence, Reference: v.Reference, Value: v.Value, Type: typeName(v.Value),
			Quality: uint16(v.Quality), QualityText: v.Quality.String(), Timestamp: tsString(v.SourceTime, true), OK: v.Statuses.OK()})
	}
	sctx, cancel := context.WithTimeout(ctx, conn.timeout)
	sub, err := sh.Subscribe(sctx, refs, print)
	cancel()
	exit := exitOK
	if err != nil {
		var se *shared.Error
		for _, e := range unjoin(err) {
			if errors.As(e, &se) && se.Reference != "" {
				fmt.Fprintf(c.stderr, "mxctl subscribe: %s: %s (%s)\n", se.Reference, se.Message, se.Reason)
				exit = exitFailed
				continue
			}
			return c.fail(name, u, e)
		}
	}
	if sub == nil {
		return exitFailed
	}
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	start := time.Now()
	<-ctx.Done()
	_ = sub.Close()
	mu.Lock()
	n := updates
	mu.Unlock()
	fmt.Fprintf(c.stderr, "mxctl subscribe: %d shared updates for %d references in %s (NATS %s, galaxy %s)\n",
		n, len(refs), time.Since(start).Round(100*time.Millisecond), u, nonEmpty(f.galaxy, subject.DefaultGalaxy))
	return exit
}

// unjoin splits an errors.Join result.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
