package runtime

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mxgateway/mxgateway/api/mxgateway/galaxy/v1"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
	"github.com/mxgateway/mxgateway/internal/galaxy/wire"
	"github.com/mxgateway/mxgateway/internal/ipc"
)

// conn is one client connection. Its queue is filled under Runtime.mu and
// drained by its writer goroutine.
type conn struct {
	id        uint64
	name      string
	subscribe bool
	watch     bool // Deployed without snapshots (browse)
	// A filtered session (Hello.filtered): its interest set, and by
	// ordinal of the current deployment whether it wants the attribute;
	// wants is nil for a session that receives every change. Both under
	// Runtime.mu.
	interest wire.InterestSet
	wants    []bool
	nc       net.Conn
	wc       *wire.Conn

	log     *slog.Logger
	mu      sync.Mutex
	lagging bool // dropped for falling behind (logged once)
	queue   []entry
	changes int
	wake    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// entry is one queued envelope, or one change (batched by the writer).
type entry struct {
	env *galaxyv1.GalaxyEnvelope
	ch  *galaxyv1.ValueChange
}

func (c *conn) push(env *galaxyv1.GalaxyEnvelope) {
	c.mu.Lock()
	c.queue = append(c.queue, entry{env: env})
	c.mu.Unlock()
	c.flush()
}

// pushChange queues a change. A connection too far behind (its worker
// applies changes slower than the Galaxy makes them, and its bounded inbox
// holds the rest back: sim.Backend.Apply) is dropped, said in the log: its
// worker marks every value bad (communication failure), reconnects and
// re-reads every value from the snapshot.
func (c *conn) pushChange(v *galaxyv1.ValueChange) {
	c.mu.Lock()
	if c.changes >= maxQueued {
		first := !c.lagging
		c.lagging = true
		c.mu.Unlock()
		if first {
			c.log.Warn("galaxy: session too far behind; connection dropped, its worker resynchronises",
				"client", c.name, "connection", c.id, "queued_changes", maxQueued)
		}
		go c.close()
		return
	}
	c.changes++
	c.queue = append(c.queue, entry{ch: v})
	c.mu.Unlock()
}

func (c *conn) flush() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.done)
		c.nc.Close()
	})
}

// writer sends the queue: envelopes as they are, runs of changes as
// batches of up to wire.MaxBatch.
func (c *conn) writer(seq func() uint64) {
	for {
		select {
		case <-c.done:
			return
		case <-c.wake:
		}
		c.mu.Lock()
		q := c.queue
		c.queue, c.changes = nil, 0
		c.mu.Unlock()
		var batch []*galaxyv1.ValueChange
		send := func() bool {
			if len(batch) == 0 {
				return true
			}
			err := c.wc.Write(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_Values{Values: &galaxyv1.ValueBatch{
				DeploySequence: seq(), Changes: batch}}})
			batch = nil
			return err == nil
		}
		for _, e := range q {
			if e.ch != nil {
				batch = append(batch, e.ch)
				if len(batch) == wire.MaxBatch && !send() {
					c.close()
					return
				}
				continue
			}
			if !send() || c.wc.Write(e.env) != nil {
				c.close()
				return
			}
		}
		if !send() {
			c.close()
			return
		}
	}
}

// handle runs one connection: the Hello check, then the session or admin
// exchange.
func (r *Runtime) handle(ctx context.Context, nc net.Conn) {
	log := r.log
	if err := ipc.CheckPeerUser(nc); err != nil {
		log.Warn("galaxy: connection refused", "error", err)
		nc.Close()
		return
	}
	wc := wire.NewConn(nc)
	_ = nc.SetReadDeadline(time.Now().Add(wire.HelloTimeout))
	env, err := wc.Read()
	hello := env.GetHello()
	switch {
	case err != nil:
		log.Warn("galaxy: no hello", "error", err)
		nc.Close()
		return
	case hello == nil || hello.GetProtocolVersion() != wire.ProtocolVersion:
		log.Warn("galaxy: bad hello", "version", hello.GetProtocolVersion())
		_ = wc.Write(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_AdminReply{AdminReply: &galaxyv1.AdminReply{
			Error: "protocol version mismatch"}}})
		nc.Close()
		return
	case !wire.KeyEqual(hello.GetCredential(), r.opts.Credential):
		log.Warn("galaxy: bad credential", "client", hello.GetClientName())
		_ = wc.Write(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_AdminReply{AdminReply: &galaxyv1.AdminReply{
			Error: wire.ErrBadCredential.Error()}}})
		nc.Close()
		return
	}
	_ = nc.SetReadDeadline(time.Time{})
	cn := &conn{log: log, name: hello.GetClientName(), subscribe: hello.GetSubscribe(), watch: hello.GetWatchDeploys(), nc: nc, wc: wc,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	filtered := cn.subscribe && hello.GetFiltered()
	if filtered {
		if err := cn.interest.Update(hello.GetInterest(), nil); err != nil {
			log.Warn("galaxy: hello refused", "client", cn.name, "error", err)
			_ = wc.Write(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_AdminReply{AdminReply: &galaxyv1.AdminReply{
				Error: err.Error()}}})
			nc.Close()
			return
		}
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		nc.Close()
		return
	}
	r.nextConn++
	cn.id = r.nextConn
	r.conns[cn.id] = cn
	d := r.cur
	if filtered {
		cn.wants = cn.interest.Ordinals(d.model)
	}
	cn.push(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_Welcome{Welcome: &galaxyv1.Welcome{
		Model: d.src, DeploySequence: d.seq, LastDeployTime: timestamppb.New(d.time),
		Settings: r.settings(), ConnectionId: cn.id, Filtered: filtered}}})
	if cn.subscribe {
		r.snapshot(cn)
	}
	r.mu.Unlock()
	log.Info("galaxy: client connected", "client", cn.name, "connection", cn.id, "session", cn.subscribe)
	seq := func() uint64 {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.cur.seq
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cn.writer(seq)
	}()
	cn.flush()
	stop := context.AfterFunc(ctx, cn.close)
	defer stop()
	for {
		env, err := wc.Read()
		if err != nil {
			break
		}
		switch b := env.GetBody().(type) {
		case *galaxyv1.GalaxyEnvelope_Writes:
			r.mu.Lock()
			d := r.cur
			r.mu.Unlock()
			if b.Writes.GetDeploySequence() != d.seq {
				continue // written against a model that is gone
			}
			ws := make([]sim.Change, len(b.Writes.GetWrites()))
			for i, w := range b.Writes.GetWrites() {
				ws[i] = wire.FromProto(w)
			}
			// Applied before the next read: a session writing faster than
			// the engine applies is held back by its socket.
			_ = d.hub.ApplyWrites(ctx, ws, cn.id)
		case *galaxyv1.GalaxyEnvelope_Admin:
			reply := r.Admin(b.Admin)
			cn.push(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_AdminReply{AdminReply: reply}})
		case *galaxyv1.GalaxyEnvelope_Interest:
			if err := r.interest(cn, b.Interest); err != nil {
				log.Warn("galaxy: interest refused; connection dropped", "client", cn.name, "connection", cn.id, "error", err)
				cn.close()
			}
		}
	}
	cn.close()
	wg.Wait()
	r.mu.Lock()
	delete(r.conns, cn.id)
	r.mu.Unlock()
	log.Info("galaxy: client disconnected", "client", cn.name, "connection", cn.id)
}

// errNotSession refuses an Interest from a client that receives no values.
var errNotSession = errors.New("galaxy: Interest from a client that is not a session")

// interest applies a session's Interest, in order with what the runtime
// sends it: from here on the changes of the attributes it removed stop,
// the current values of those it added follow (and then their changes),
// then the interest_applied batch. An Interest that would take the set past
// its bounds (wire.MaxInterest, MaxInterestBytes) is refused whole.
func (r *Runtime) interest(cn *conn, in *galaxyv1.Interest) error {
	if !cn.subscribe {
		return errNotSession
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.cur
	switch {
	case in.GetAll():
		cn.wants, cn.interest = nil, wire.InterestSet{}
		for _, c := range d.raw {
			if c.Value != nil {
				cn.pushChange(wire.ToProto(r.effective(d, c)))
			}
		}
	case cn.wants == nil:
		// Every change reaches this session already.
	default:
		if err := cn.interest.Update(in.GetAdd(), in.GetRemove()); err != nil {
			return err
		}
		for _, ref := range in.GetRemove() {
			if ord, ok := d.model.SharedAttribute(ref); ok && !cn.interest.Has(ref) {
				cn.wants[ord] = false
			}
		}
		for _, ref := range in.GetAdd() {
			ord, ok := d.model.SharedAttribute(ref)
			if !ok {
				continue // kept in the set for a later deploy
			}
			cn.wants[ord] = true
			if c := d.raw[ord]; c.Value != nil {
				cn.pushChange(wire.ToProto(r.effective(d, c)))
			}
		}
	}
	if id := in.GetId(); id != 0 {
		cn.push(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_Values{Values: &galaxyv1.ValueBatch{
			DeploySequence: d.seq, InterestApplied: id}}})
	}
	cn.flush()
	return nil
}
