package browse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mxgateway/mxgateway/api/mxgateway/galaxy/v1"
	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/galaxy/wire"
	"github.com/mxgateway/mxgateway/internal/ipc"
)

// Watcher keeps a Store at the model a simulated Galaxy runtime serves: it
// connects as a watching client (no values), builds a snapshot from the
// Welcome and from every Deployed, and when the runtime goes away marks
// the snapshot stale and reconnects until it is back.
type Watcher struct {
	dir   string
	key   []byte
	store *Store
	log   *slog.Logger

	mu     sync.Mutex
	nc     net.Conn
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup
}

// WatchRuntime connects to the runtime in dir with its key (nil reads the
// key file), puts its model in st and keeps it current until Close. The
// first connection is made before it returns, bounded by ctx.
func WatchRuntime(ctx context.Context, dir string, key []byte, st *Store, log *slog.Logger) (*Watcher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{dir: dir, key: key, store: st, log: log, done: make(chan struct{})}
	wc, err := w.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("browse: galaxy runtime: %w", err)
	}
	w.wg.Add(1)
	go w.run(wc)
	return w, nil
}

// Close stops watching and waits for the watcher to end.
func (w *Watcher) Close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.done)
		if w.nc != nil {
			w.nc.Close()
		}
	}
	w.mu.Unlock()
	w.wg.Wait()
}

// connect dials, says Hello and puts the Welcome's model in force.
func (w *Watcher) connect(ctx context.Context) (*wire.Conn, error) {
	key := w.key
	if key == nil {
		k, err := wire.ReadKey(w.dir)
		if err != nil {
			return nil, err
		}
		key = k
	}
	nc, err := ipc.Dial(ctx, wire.Endpoint(w.dir))
	if err != nil {
		return nil, err
	}
	wc := wire.NewConn(nc)
	if err := wc.Write(&galaxyv1.GalaxyEnvelope{Body: &galaxyv1.GalaxyEnvelope_Hello{Hello: &galaxyv1.Hello{
		ProtocolVersion: wire.ProtocolVersion, Credential: key, ClientName: "browse", WatchDeploys: true}}}); err != nil {
		nc.Close()
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetReadDeadline(dl)
	}
	env, err := wc.Read()
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetReadDeadline(time.Time{})
	wel := env.GetWelcome()
	if wel == nil {
		nc.Close()
		return nil, fmt.Errorf("refused: %s", env.GetAdminReply().GetError())
	}
	if err := w.deploy(wel.GetModel(), wel.GetDeploySequence(), wel.GetLastDeployTime().AsTime()); err != nil {
		nc.Close()
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		nc.Close()
		return nil, errors.New("closed")
	}
	w.nc = nc
	return wc, nil
}

func (w *Watcher) deploy(m *galaxyv1.Model, seq uint64, at time.Time) error {
	model, err := wire.BuildModel(m)
	if err != nil {
		return err
	}
	w.store.Set(FromModel(model, seq, at, mxgatewayv1.Freshness_FRESHNESS_LIVE))
	w.log.Info("galaxy browse: model in force", "sequence", seq, "objects", len(model.Objects))
	return nil
}

func (w *Watcher) run(wc *wire.Conn) {
	defer w.wg.Done()
	for {
		for {
			env, err := wc.Read()
			if err != nil {
				break
			}
			if d := env.GetDeployed(); d != nil {
				if err := w.deploy(d.GetModel(), d.GetDeploySequence(), d.GetLastDeployTime().AsTime()); err != nil {
					w.log.Error("galaxy browse: model refused", "error", err)
				}
			}
		}
		select {
		case <-w.done:
			return
		default:
		}
		if s := w.store.Load(); s != nil {
			w.store.Set(s.withFreshness(mxgatewayv1.Freshness_FRESHNESS_STALE))
		}
		w.log.Warn("galaxy browse: runtime connection lost; serving the last model, stale")
		wait := 50 * time.Millisecond
		for {
			select {
			case <-w.done:
				return
			case <-time.After(wait):
			}
			wait = min(wait*2, time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, err := w.connect(ctx)
			cancel()
			if err == nil {
				wc = c
				break
			}
		}
	}
}
