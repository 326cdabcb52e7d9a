package natsbus

import (
	"context"
	"log/slog"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/logging"
)

// AlarmFeed is one subscription to the gateway's alarm monitor
// (*alarms.Feed): its messages in sequence order until it ends.
type AlarmFeed interface {
	Next(ctx context.Context) (*mxgatewayv1.StreamAlarmsResponse, error)
	Close()
}

// alarmOwnerKey is the name whose rendezvous owner, among the gateways
// that publish alarms, publishes them (one publication per transition when
// gateways share a NATS system).
const alarmOwnerKey = "\x00alarms"

// alarmRetry is the pause before a feed that ended is opened again.
const alarmRetry = time.Second

// PublishAlarms publishes every alarm transition of the monitor on
// mxgw.v1.<galaxy>.alarm.<alarm reference> (the StreamAlarmsResponse with
// its transition and the monitor's sequence, encoded like values) until
// ctx ends. subscribe opens a feed after a sequence (0: from now; the
// snapshot is skipped); a feed that ends (it fell behind) is opened again
// after the last sequence it delivered, so the monitor's ring fills the gap
// when it still can.
func (b *Bus) PublishAlarms(ctx context.Context, subscribe func(after uint64) (AlarmFeed, error)) {
	b.alarms.Store(true)
	defer b.alarms.Store(false)
	_ = b.nc.Publish(b.peerHello(), b.hello())
	var after uint64
	for ctx.Err() == nil {
		f, err := subscribe(after)
		if err != nil {
			b.log.Warn("nats: alarm feed not opened", slog.Any(logging.KeyErr, err))
		} else {
			after = b.drainAlarms(ctx, f, after)
			f.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(alarmRetry):
		}
	}
}

// drainAlarms publishes f's transitions until it ends and returns the last
// sequence it delivered.
func (b *Bus) drainAlarms(ctx context.Context, f AlarmFeed, after uint64) uint64 {
	for {
		msg, err := f.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				b.log.Info("nats: alarm feed ended; opening it again", slog.Any(logging.KeyErr, err))
			}
			return after
		}
		after = msg.GetSequence()
		switch {
		case msg.GetTransition() != nil:
			b.publishAlarm(msg)
		case msg.GetGap() != nil:
			b.log.Warn("nats: alarm transitions lost", slog.String("why", msg.GetGap().GetReason()))
		}
	}
}

// publishAlarm publishes one transition, when this gateway is the one that
// publishes alarms among its peers.
func (b *Bus) publishAlarm(msg *mxgatewayv1.StreamAlarmsResponse) {
	b.mu.Lock()
	mine := b.alarmOwnerLocked() == b.id
	b.mu.Unlock()
	if !mine {
		return
	}
	ref := msg.GetTransition().GetAlarm().GetReference()
	sbj, err := b.subj.Alarm(ref)
	if err != nil {
		b.log.Warn("nats: alarm has no subject", slog.String("reference", ref), slog.Any(logging.KeyErr, err))
		return
	}
	data, err := b.encode(msg)
	if err != nil {
		b.log.Error("nats: alarm not encoded", slog.Any(logging.KeyErr, err))
		return
	}
	if err := b.nc.Publish(sbj, data); err != nil {
		b.log.Debug("nats: publish", slog.String("subject", sbj), slog.Any(logging.KeyErr, err))
	}
}

// alarmOwnerLocked is the gateway that publishes alarms: the rendezvous
// owner of alarmOwnerKey among this gateway and the peers that publish
// alarms. b.mu must be held.
func (b *Bus) alarmOwnerLocked() string {
	best, w := b.id, rendezvous(b.id, alarmOwnerKey)
	for id, p := range b.peers {
		if !p.alarms {
			continue
		}
		if pw := rendezvous(id, alarmOwnerKey); pw > w || (pw == w && id > best) {
			best, w = id, pw
		}
	}
	return best
}
