package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/session"
)

// MaxWatched bounds the watch panel of one login.
const MaxWatched = 50

// watchThrottle is the shortest interval between two updates of a live
// watch stream.
const watchThrottle = 100 * time.Millisecond

// watchCloseTimeout bounds the close of a watch session.
const watchCloseTimeout = 30 * time.Second

// WatchClientName is the client name of the sessions the watch panel
// opens (they show on the Sessions page, owned by the logged-in key).
const WatchClientName = "dashboard watch"

// watcher is a login's watch panel: one gateway session, opened on the
// first watch as the logged-in key (its quota, scopes and read
// constraints apply), with every watched reference added and advised and
// one live subscription whose data changes fill the panel.
type watcher struct {
	s *Server

	op sync.Mutex // serialises the commands (never held by the pump)

	mu     sync.Mutex
	sess   *session.Session
	hlmx   int32
	items  []*watchItem
	notify chan struct{}
	cancel context.CancelFunc
	pump   chan struct{} // closed when the pump ended
	closed bool
}

type watchItem struct {
	ref     string
	handle  int32
	value   string
	quality string
	stamp   string
	changes uint64
	err     string
}

// watchRow is one line of the watch panel (rendered, and sent live).
type watchRow struct {
	Ref     string `json:"ref"`
	Value   string `json:"value"`
	Quality string `json:"quality"`
	Time    string `json:"time"`
	Changes uint64 `json:"changes"`
	Err     string `json:"err"`
}

func newWatcher(s *Server) *watcher {
	return &watcher{s: s, notify: make(chan struct{})}
}

// signalLocked wakes every live watch stream.
func (w *watcher) signalLocked() {
	close(w.notify)
	w.notify = make(chan struct{})
}

func (w *watcher) rows() []watchRow {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]watchRow, 0, len(w.items))
	for _, it := range w.items {
		out = append(out, watchRow{Ref: it.ref, Value: it.value, Quality: it.quality, Time: it.stamp, Changes: it.changes, Err: it.err})
	}
	return out
}

func (w *watcher) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.notify
}

var (
	errWatchFull   = fmt.Errorf("the watch panel holds at most %d references", MaxWatched)
	errNoValues    = errors.New("this API key may not read tag values (it needs scope invoke:read)")
	errWatchClosed = errors.New("the login ended")
)

// invoke runs one command in the watch session and turns an MXAccess
// refusal into an error.
func (w *watcher) invoke(ctx context.Context, ss *session.Session, cmd *mxgatewayv1.Command) (*mxgatewayv1.Reply, error) {
	reply, err := ss.Invoke(ctx, cmd, 0)
	if err != nil {
		return nil, err
	}
	if st := reply.GetStatus(); st != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK {
		return nil, fmt.Errorf("MXAccess refused it: %s", enumName(st.String()))
	}
	return reply, nil
}

// open starts the watch session (w.op held).
func (w *watcher) open(ctx context.Context, p *auth.Principal) (*session.Session, int32, error) {
	ss, err := w.s.opts.Sessions.Open(ctx, session.OpenRequest{ClientName: WatchClientName, OwnerKeyID: p.KeyID, QuotaExempt: p.IsAdmin()})
	if err != nil {
		return nil, 0, err
	}
	reply, err := w.invoke(ctx, ss, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Register{Register: &mxgatewayv1.RegisterCommand{ClientName: WatchClientName}}})
	var sub *session.Subscription
	if err == nil {
		sub, err = ss.Subscribe(session.SubscribeRequest{LiveOnly: true, Conflate: true})
	}
	if err != nil {
		w.s.closeSession(ss.ID())
		return nil, 0, err
	}
	pctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		cancel()
		sub.Close()
		w.s.closeSession(ss.ID())
		return nil, 0, errWatchClosed
	}
	w.sess, w.hlmx, w.cancel, w.pump = ss, reply.GetRegister().GetServerHandle(), cancel, done
	w.mu.Unlock()
	w.s.streams.Go(func() { w.run(pctx, ss, sub, done) })
	return ss, w.hlmx, nil
}

// run copies the watch session's data changes into the panel.
func (w *watcher) run(ctx context.Context, ss *session.Session, sub *session.Subscription, done chan struct{}) {
	defer close(done)
	defer sub.Close()
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			w.mu.Lock()
			if w.sess == ss {
				w.sess = nil
				for _, it := range w.items {
					it.err, it.handle = "watch session ended; watch again to reopen it", 0
				}
				w.signalLocked()
			}
			w.mu.Unlock()
			return
		}
		if !ev.IsDataChange() {
			continue
		}
		dc := ev.Msg().GetDataChange()
		w.mu.Lock()
		for _, it := range w.items {
			if it.handle == ev.ItemHandle && w.hlmx == ev.ServerHandle {
				it.value, it.quality, it.changes = formatValue(dc.GetValue()), formatQuality(dc.GetQuality()), it.changes+1
				if t := dc.GetTimestamp(); t != nil {
					it.stamp = t.AsTime().UTC().Format("15:04:05.000Z")
				}
			}
		}
		w.signalLocked()
		w.mu.Unlock()
	}
}

// add watches ref as p: the reference must pass p's read constraints,
// checked by the same rule as a client's AddItem.
func (w *watcher) add(ctx context.Context, p *auth.Principal, ref string) error {
	if !mayReadValues(p) {
		return errNoValues
	}
	add := &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ItemDefinition: ref}}}
	if _, err := auth.CheckCommand(p, add, nil); err != nil {
		return err
	}
	w.op.Lock()
	defer w.op.Unlock()
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errWatchClosed
	}
	var it *watchItem
	for _, x := range w.items {
		if x.ref == ref {
			it = x
		}
	}
	if it == nil && len(w.items) >= MaxWatched {
		w.mu.Unlock()
		return errWatchFull
	}
	ss, hlmx := w.sess, w.hlmx
	w.mu.Unlock()

	if ss == nil {
		var err error
		if ss, hlmx, err = w.open(ctx, p); err != nil {
			return err
		}
		// A reopened session re-adds what the panel held.
		w.mu.Lock()
		held := append([]*watchItem(nil), w.items...)
		w.mu.Unlock()
		for _, x := range held {
			if x != it {
				w.advise(ctx, ss, hlmx, x)
			}
		}
	}
	w.mu.Lock()
	if it == nil {
		it = &watchItem{ref: ref}
		w.items = append(w.items, it)
	}
	advised := it.handle > 0
	w.mu.Unlock()
	if advised {
		return nil
	}
	return w.advise(ctx, ss, hlmx, it)
}

// advise adds and advises one item (w.op held).
func (w *watcher) advise(ctx context.Context, ss *session.Session, hlmx int32, it *watchItem) error {
	reply, err := w.invoke(ctx, ss, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_AddItem{AddItem: &mxgatewayv1.AddItemCommand{ServerHandle: hlmx, ItemDefinition: it.ref}}})
	if err == nil {
		// The handle is known before the Advise: its first data change
		// may arrive before the Advise's reply.
		h := reply.GetItemHandle().GetItemHandle()
		w.mu.Lock()
		it.handle = h
		w.mu.Unlock()
		_, err = w.invoke(ctx, ss, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_Advise{Advise: &mxgatewayv1.AdviseCommand{ServerHandle: hlmx, ItemHandle: h}}})
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		it.err, it.handle = err.Error(), 0 // a later watch of it tries again
		w.signalLocked()
		return err
	}
	it.err = ""
	w.signalLocked()
	return nil
}

// remove stops watching ref.
func (w *watcher) remove(ctx context.Context, ref string) {
	w.op.Lock()
	defer w.op.Unlock()
	w.mu.Lock()
	var it *watchItem
	for i, x := range w.items {
		if x.ref == ref {
			it = x
			w.items = append(w.items[:i], w.items[i+1:]...)
			break
		}
	}
	ss, hlmx := w.sess, w.hlmx
	w.signalLocked()
	w.mu.Unlock()
	if it == nil || ss == nil || it.handle <= 0 {
		return
	}
	_, _ = w.invoke(ctx, ss, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_UnAdvise{UnAdvise: &mxgatewayv1.UnAdviseCommand{ServerHandle: hlmx, ItemHandle: it.handle}}})
	_, _ = w.invoke(ctx, ss, &mxgatewayv1.Command{Kind: &mxgatewayv1.Command_RemoveItem{RemoveItem: &mxgatewayv1.RemoveItemCommand{ServerHandle: hlmx, ItemHandle: it.handle}}})
}

// close ends the watch session (in the background: a worker shutdown
// takes a moment) and every live watch stream.
func (w *watcher) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	ss, cancel := w.sess, w.cancel
	w.sess = nil
	w.signalLocked()
	w.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if ss != nil {
		w.s.closeSession(ss.ID())
	}
}

// closeSession closes a gateway session the dashboard opened, in the
// background.
func (s *Server) closeSession(id string) {
	s.streams.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), watchCloseTimeout)
		defer cancel()
		_, _ = s.opts.Sessions.CloseSession(ctx, id)
	})
}

// watcherOf returns a login's watch panel, creating it on first use.
func (s *Server) watcherOf(lg *login) *watcher {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if lg.watch == nil {
		lg.watch = newWatcher(s)
	}
	return lg.watch
}

func (s *Server) watchAdd(w http.ResponseWriter, r *request) {
	ref := strings.TrimSpace(r.PostFormValue("ref"))
	if ref == "" || len(ref) > 1024 {
		watchReply(w, r, http.StatusBadRequest, "ref must be a reference (at most 1024 bytes)")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), watchCloseTimeout)
	defer cancel()
	if err := s.watcherOf(r.login).add(ctx, r.p, ref); err != nil {
		code := http.StatusBadRequest
		var de *auth.DeniedError
		if errors.As(err, &de) || errors.Is(err, errNoValues) {
			code = http.StatusForbidden
		}
		watchReply(w, r, code, err.Error())
		return
	}
	watchReply(w, r, http.StatusOK, "")
}

func (s *Server) watchRemove(w http.ResponseWriter, r *request) {
	ctx, cancel := context.WithTimeout(r.Context(), watchCloseTimeout)
	defer cancel()
	s.watcherOf(r.login).remove(ctx, r.PostFormValue("ref"))
	watchReply(w, r, http.StatusOK, "")
}

// watchReply answers a script with JSON, a plain form with the page.
func watchReply(w http.ResponseWriter, r *request, code int, msg string) {
	if r.Header.Get("X-Requested-With") == "" {
		if code == http.StatusOK {
			http.Redirect(w, r.Request, Prefix+"browse", http.StatusSeeOther)
			return
		}
		http.Error(w, msg, code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		OK    bool   `json:"ok"`
		Error string `json:"error,omitempty"`
	}{code == http.StatusOK, msg})
}

func (s *Server) liveWatch(w http.ResponseWriter, r *request) {
	wt := s.watcherOf(r.login)
	ctx, e, end, ok := s.beginStream(w, r)
	if !ok {
		return
	}
	defer end()
	check := time.NewTicker(s.opts.LiveInterval)
	defer check.Stop()
	for {
		wait := wt.wait()
		if e.send("watch", wt.rows()) != nil {
			return
		}
		// At most one update per watchThrottle, however fast values change.
		select {
		case <-ctx.Done():
			return
		case <-time.After(watchThrottle):
		}
		select {
		case <-ctx.Done():
			return
		case <-wait:
		case <-check.C:
			if !s.stillLoggedIn(ctx, r) {
				_ = e.send("logout", struct{}{})
				return
			}
		}
	}
}
