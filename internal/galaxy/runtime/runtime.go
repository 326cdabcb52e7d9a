// Package runtime is the simulated Galaxy runtime behind `mxgateway galaxy`:
// one Galaxy (model, values, generators, writes, deploy state, platform
// faults) that every sim worker of one or more gateways attaches to, the
// way every LmxProxy.dll on a node talks to one platform runtime. Each
// worker keeps its clients' MXAccess state; the runtime holds what a Galaxy
// has once.
//
// The value engine is a simulator in its hub role (sim.Options.OnChange).
// Changes reach each connection in batches, in runtime order; an unchanged
// value is never sent. Platform down and engine off scan are overrides of
// the quality (and, for a platform, the status) every session sees, kept
// apart from the values so recovery re-reports them as they are.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mxgateway/mxgateway/api/mxgateway/galaxy/v1"
	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/backend/sim"
	"github.com/mxgateway/mxgateway/internal/galaxy/wire"
	"github.com/mxgateway/mxgateway/internal/ipc"
)

// Admin actions.
const (
	ActionDeploy        = "deploy"
	ActionPlatformDown  = "platformDown"
	ActionPlatformUp    = "platformUp"
	ActionEngineOffScan = "engineOffScan"
	ActionEngineOnScan  = "engineOnScan"
	ActionSlowFirstBind = "slowFirstBind"
	ActionStatus        = "status"
	ActionCrash         = "crash"
	ActionStorm         = "storm"
)

// maxStorm bounds one storm request.
const maxStorm = 10_000_000

// CrashExitCode is the exit code of the crash action.
const CrashExitCode = 3

// maxQueued bounds the changes waiting for one connection; a connection
// that falls that far behind is dropped (its worker reconnects and gets a
// fresh snapshot).
const maxQueued = 1 << 20

// Options configure a runtime.
type Options struct {
	// Model describes the Galaxy; nil is the demo Galaxy.
	Model *galaxyv1.Model
	// ModelPath, when set, is the file a deploy without a model reloads.
	ModelPath string
	// Credential is what every Hello must carry.
	Credential []byte
	// Logger receives the runtime's logs; nil discards them.
	Logger *slog.Logger
	// Clock drives the generators; nil is the wall clock.
	Clock sim.Clock
	// Exit is called by the crash action, shortly after its reply; nil
	// refuses the action.
	Exit func(code int)
}

// Runtime is one simulated Galaxy.
type Runtime struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	cur      *deployment
	conns    map[uint64]*conn
	nextConn uint64
	firstMs  int64           // slow first bind, -1 none
	down     map[string]bool // platforms down (lower-case tags)
	offScan  map[string]bool // engines off scan (lower-case tags)
	closed   bool
	timers   []*time.Timer // scripted faults of the current deployment
	wg       sync.WaitGroup
}

// deployment is one deployed model and its value engine.
type deployment struct {
	src    *galaxyv1.Model
	model  *sim.Model
	seq    uint64
	time   time.Time
	hub    *sim.Backend
	raw    []sim.Change // latest hub value by ordinal (Value nil for Sim)
	hosts  [][]string   // by ordinal: the object's tag and its hosts, lower-case
	alarms *alarmEngine // the alarm evaluation (alarms.go)
}

// New deploys the model and starts the value engine.
func New(opts Options) (*Runtime, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Model == nil {
		opts.Model = &galaxyv1.Model{Source: &galaxyv1.Model_Demo{Demo: true}}
	}
	r := &Runtime{opts: opts, log: opts.Logger, conns: map[uint64]*conn{}, firstMs: -1,
		down: map[string]bool{}, offScan: map[string]bool{}}
	d, err := r.deploy(opts.Model, 1)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.cur = d
	r.scheduleFaults(d)
	r.mu.Unlock()
	return r, nil
}

// scheduleFaults arms the model's runtime faults (mu held): each one
// starts at its At, lasts its Duration, and repeats with its Every.
func (r *Runtime) scheduleFaults(d *deployment) {
	for _, t := range r.timers {
		t.Stop()
	}
	r.timers = nil
	for _, f := range d.model.Faults {
		if !sim.RuntimeFault(f.Kind) {
			continue
		}
		r.arm(d, f, f.At)
	}
}

// arm schedules one occurrence of a scripted runtime fault (mu held).
func (r *Runtime) arm(d *deployment, f sim.FaultScript, after time.Duration) {
	start, end := ActionPlatformDown, ActionPlatformUp
	switch f.Kind {
	case sim.FaultEngineOffScan:
		start, end = ActionEngineOffScan, ActionEngineOnScan
	case sim.FaultSlowFirstBind:
		start, end = ActionSlowFirstBind, ActionSlowFirstBind
	}
	r.timers = append(r.timers, time.AfterFunc(after, func() {
		r.mu.Lock()
		live := r.cur == d && !r.closed
		r.mu.Unlock()
		if !live {
			return
		}
		r.Admin(&galaxyv1.AdminRequest{Action: start, Target: f.Object, DurationMs: f.Duration.Milliseconds()})
		if f.Kind == sim.FaultSlowFirstBind {
			return // lasts until the next slowFirstBind
		}
		r.mu.Lock()
		r.timers = append(r.timers, time.AfterFunc(f.Duration, func() {
			r.Admin(&galaxyv1.AdminRequest{Action: end, Target: f.Object})
		}))
		if f.Every > 0 {
			r.arm(d, f, f.Every)
		}
		r.mu.Unlock()
	}))
}

// deploy builds a model and its hub; the hub reports to r once installed.
func (r *Runtime) deploy(src *galaxyv1.Model, seq uint64) (*deployment, error) {
	m, err := wire.BuildModel(src)
	if err != nil {
		return nil, err
	}
	d := &deployment{src: src, model: m, seq: seq, time: time.Now().UTC(), alarms: newAlarmEngine(m)}
	hub, err := sim.New(sim.Options{Model: m, Profile: sim.ProfileTest, Clock: r.opts.Clock, Seed: int64(seq),
		Logger: r.log.With("component", "galaxy-hub"), OnChange: func(b []sim.Change) { r.changed(d, b) },
		Exit: func(int) {}})
	if err != nil {
		return nil, err
	}
	d.hub = hub
	d.raw = make([]sim.Change, m.AttributeCount())
	d.hosts = make([][]string, m.AttributeCount())
	chains := make(map[*sim.Object][]string, len(m.Objects)) // one chain per object, shared by its attributes
	for i := range d.hosts {
		o, _ := m.AttributeAt(i)
		if o == nil {
			continue
		}
		if chains[o] == nil {
			chains[o] = m.HostChain(o)
		}
		d.hosts[i] = chains[o]
	}
	if _, err := hub.Open(context.Background(), nullSink{}); err != nil {
		return nil, err
	}
	vals, err := hub.Values(context.Background())
	if err != nil {
		hub.Close()
		return nil, err
	}
	r.mu.Lock()
	for _, c := range vals {
		if d.raw[c.Attr].Value == nil { // else a change already superseded it
			d.raw[c.Attr] = c
		}
	}
	d.alarms.start(hub, d.raw)
	r.mu.Unlock()
	return d, nil
}

type nullSink struct{}

func (nullSink) Event(*mxgatewayv1.Event) {}

// changed receives a batch from the hub (on its STA).
func (r *Runtime) changed(d *deployment, batch []sim.Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range batch {
		d.raw[c.Attr] = c
	}
	d.alarms.changed(batch, d.raw)
	if r.cur != d {
		return // not installed yet, or replaced: nobody sees it
	}
	for _, cn := range r.conns {
		if !cn.subscribe {
			continue
		}
		for _, c := range batch {
			if cn.wants != nil && !cn.wants[c.Attr] {
				continue
			}
			e := r.effective(d, c)
			e.Own = c.Origin != 0 && c.Origin == cn.id
			cn.pushChange(wire.ToProto(e))
		}
		cn.flush()
	}
}

// effective applies the platform overrides to a raw value (mu held). It
// is what leaves the runtime: a write's operator stays in it.
func (r *Runtime) effective(d *deployment, c sim.Change) sim.Change {
	c.Operator = ""
	for _, h := range d.hosts[c.Attr] {
		if r.down[h] {
			c.Quality, c.Category = mxtypes.QualityBadCommFailure, int32(mxgatewayv1.MxStatusCategory_MX_STATUS_CATEGORY_COMMUNICATION_ERROR)
			return c
		}
	}
	for _, h := range d.hosts[c.Attr] {
		if r.offScan[h] {
			c.Quality = mxtypes.QualityBadOutOfService
			return c
		}
	}
	return c
}

// snapshot queues the current effective values for cn (mu held).
func (r *Runtime) snapshot(cn *conn) {
	d := r.cur
	for i, c := range d.raw {
		if c.Value == nil || cn.wants != nil && !cn.wants[i] {
			continue
		}
		cn.pushChange(wire.ToProto(r.effective(d, c)))
	}
	cn.push(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_Values{Values: &galaxyv1.ValueBatch{
		DeploySequence: d.seq, SnapshotEnd: true}}})
}

// rebroadcast sends every value whose effective quality an override
// change touched (mu held).
func (r *Runtime) rebroadcast(tag string) {
	d := r.cur
	for _, cn := range r.conns {
		if !cn.subscribe {
			continue
		}
		for i, c := range d.raw {
			if c.Value == nil || !contains(d.hosts[i], tag) || cn.wants != nil && !cn.wants[i] {
				continue
			}
			cn.pushChange(wire.ToProto(r.effective(d, c)))
		}
		cn.flush()
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Serve accepts connections on ln until ctx ends or ln fails.
func (r *Runtime) Serve(ctx context.Context, ln ipc.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.handle(ctx, c)
		}()
	}
}

// Close stops the value engine and ends every connection.
func (r *Runtime) Close() {
	r.mu.Lock()
	r.closed = true
	for _, t := range r.timers {
		t.Stop()
	}
	d := r.cur
	conns := make([]*conn, 0, len(r.conns))
	for _, cn := range r.conns {
		conns = append(conns, cn)
	}
	r.mu.Unlock()
	for _, cn := range conns {
		cn.close()
	}
	r.wg.Wait()
	d.hub.Close()
}

// Admin runs an administrative action (also reachable over the protocol).
func (r *Runtime) Admin(req *galaxyv1.AdminRequest) *galaxyv1.AdminReply {
	target := strings.ToLower(req.GetTarget())
	switch req.GetAction() {
	case ActionDeploy:
		return r.redeploy(req.GetModel())
	case ActionPlatformDown, ActionPlatformUp, ActionEngineOffScan, ActionEngineOnScan:
		r.mu.Lock()
		defer r.mu.Unlock()
		o := r.cur.model.Object(target)
		if o == nil {
			return &galaxyv1.AdminReply{Error: fmt.Sprintf("no object %q", req.GetTarget()), DeploySequence: r.cur.seq}
		}
		switch req.GetAction() {
		case ActionPlatformDown:
			r.down[target] = true
		case ActionPlatformUp:
			delete(r.down, target)
		case ActionEngineOffScan:
			r.offScan[target] = true
		case ActionEngineOnScan:
			delete(r.offScan, target)
		}
		r.log.Warn("galaxy fault", "action", req.GetAction(), "target", o.Tag)
		r.rebroadcast(target)
		return &galaxyv1.AdminReply{DeploySequence: r.cur.seq, Status: r.statusLocked()}
	case ActionSlowFirstBind:
		r.mu.Lock()
		defer r.mu.Unlock()
		r.firstMs = req.GetDurationMs()
		if r.firstMs <= 0 {
			r.firstMs = -1
		}
		for _, cn := range r.conns {
			if cn.subscribe {
				cn.push(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_Settings{Settings: r.settings()}})
			}
		}
		return &galaxyv1.AdminReply{DeploySequence: r.cur.seq, Status: r.statusLocked()}
	case ActionCrash:
		if r.opts.Exit == nil {
			return &galaxyv1.AdminReply{Error: "crash is not enabled"}
		}
		r.log.Warn("galaxy runtime: simulated crash")
		time.AfterFunc(100*time.Millisecond, func() { r.opts.Exit(CrashExitCode) })
		return &galaxyv1.AdminReply{Status: "crashing"}
	case ActionStorm:
		n := req.GetDurationMs() // the count travels in duration_ms
		if n <= 0 || n > maxStorm {
			return &galaxyv1.AdminReply{Error: fmt.Sprintf("storm count %d not in 1..%d", n, maxStorm)}
		}
		r.mu.Lock()
		hub := r.cur.hub
		r.mu.Unlock()
		ok, err := hub.Storm(context.Background(), req.GetTarget(), int(n))
		if err != nil || !ok {
			return &galaxyv1.AdminReply{Error: fmt.Sprintf("storm target %q is not a shared MxInteger attribute (%v)", req.GetTarget(), err)}
		}
		return &galaxyv1.AdminReply{Status: fmt.Sprintf("storm of %d changes of %s", n, req.GetTarget())}
	case ActionStatus:
		r.mu.Lock()
		defer r.mu.Unlock()
		return &galaxyv1.AdminReply{DeploySequence: r.cur.seq, Status: r.statusLocked()}
	}
	return &galaxyv1.AdminReply{Error: fmt.Sprintf("unknown action %q", req.GetAction())}
}

func (r *Runtime) settings() *galaxyv1.Settings {
	return &galaxyv1.Settings{FirstBindDelayMs: r.firstMs}
}

func (r *Runtime) statusLocked() string {
	n := 0
	for _, cn := range r.conns {
		if cn.subscribe {
			n++
		}
	}
	return fmt.Sprintf("galaxy %s deploy %d (%s), %d objects, %d attributes, %d sessions, platforms down %d, engines off scan %d",
		r.cur.model.Galaxy, r.cur.seq, r.cur.time.Format(time.RFC3339), len(r.cur.model.Objects), r.cur.model.AttributeCount(),
		n, len(r.down), len(r.offScan))
}

// redeploy replaces the model: a new engine, then every session gets the
// new model and its snapshot.
func (r *Runtime) redeploy(src *galaxyv1.Model) *galaxyv1.AdminReply {
	if src.GetSource() == nil {
		if r.opts.ModelPath != "" {
			data, err := os.ReadFile(r.opts.ModelPath)
			if err != nil {
				return &galaxyv1.AdminReply{Error: err.Error()}
			}
			src = &galaxyv1.Model{Source: &galaxyv1.Model_Yaml{Yaml: data}}
		} else {
			r.mu.Lock()
			src = r.cur.src
			r.mu.Unlock()
		}
	}
	r.mu.Lock()
	seq := r.cur.seq + 1
	r.mu.Unlock()
	d, err := r.deploy(src, seq)
	if err != nil {
		return &galaxyv1.AdminReply{Error: err.Error()}
	}
	r.mu.Lock()
	old := r.cur
	r.cur = d
	r.scheduleFaults(d)
	for _, cn := range r.conns {
		if cn.subscribe {
			if cn.wants != nil {
				cn.wants = cn.interest.Ordinals(d.model) // the set, resolved against the new model
			}
			cn.push(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_Deployed{Deployed: &galaxyv1.Deployed{
				Model: d.src, DeploySequence: d.seq, LastDeployTime: timestamppb.New(d.time)}}})
			r.snapshot(cn)
			cn.flush()
		} else if cn.watch {
			cn.push(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_Deployed{Deployed: &galaxyv1.Deployed{
				Model: d.src, DeploySequence: d.seq, LastDeployTime: timestamppb.New(d.time)}}})
			cn.flush()
		}
	}
	status := r.statusLocked()
	r.mu.Unlock()
	old.hub.Close()
	r.log.Info("galaxy deployed", "sequence", d.seq, "objects", len(d.model.Objects))
	return &galaxyv1.AdminReply{DeploySequence: d.seq, Status: status}
}
