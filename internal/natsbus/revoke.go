package natsbus

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/logging"
)

// A key revoked (or rotated, or deleted) while NATS clients are connected
// with it loses those connections (embedded mode): every key with a
// connection is watched for revocation (Options.WatchRevocation, the auth
// manager's: at once for revocations through this gateway, within its poll
// interval for others), and its connections are closed when it fires; the
// next connect is refused by the authentication hook. Watches of keys with
// no connection left are dropped every watchPrune.

// watchPrune is how often watches of keys without a connection are dropped;
// a watch younger than this is kept (its connection may not be registered
// yet).
const watchPrune = 10 * time.Second

// keyWatch is one key's revocation watch.
type keyWatch struct {
	stop    context.CancelFunc
	touched time.Time // the key's last connect
}

// watchKey watches keyID for revocation unless it is watched already.
func (h *authHook) watchKey(keyID string) {
	if h.watch == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.base == nil || h.base.Err() != nil {
		return
	}
	if w, ok := h.watches[keyID]; ok {
		w.touched = time.Now()
		return
	}
	ctx, stop := h.watch(h.base, keyID)
	h.watches[keyID] = &keyWatch{stop: stop, touched: time.Now()}
	h.wg.Go(func() {
		<-ctx.Done()
		if errors.Is(context.Cause(ctx), auth.ErrKeyRevoked) {
			h.cut(keyID)
		}
	})
}

// cut closes every connection of keyID and forgets the key.
func (h *authHook) cut(keyID string) {
	h.mu.Lock()
	ns := h.ns
	delete(h.who, keyID)
	if w, ok := h.watches[keyID]; ok {
		delete(h.watches, keyID)
		defer w.stop()
	}
	h.mu.Unlock()
	if ns == nil {
		return
	}
	n := 0
	for _, cid := range connsOf(ns, keyID) {
		if ns.DisconnectClientByID(cid) == nil {
			n++
		}
	}
	h.log.Info("nats: connections of a revoked key closed", slog.String(logging.KeyKeyID, keyID), slog.Int("connections", n))
}

// connsOf lists the ids of keyID's open client connections.
func connsOf(ns *server.Server, keyID string) []uint64 {
	var ids []uint64
	for offset := 0; ; {
		cz, err := ns.Connz(&server.ConnzOptions{Username: true, User: keyID, Offset: offset, Limit: server.DefaultConnListSize})
		if err != nil || len(cz.Conns) == 0 {
			return ids
		}
		for _, c := range cz.Conns {
			ids = append(ids, c.Cid)
		}
		offset += len(cz.Conns)
	}
}

// pruneWatches drops the watches of keys with no connection left.
func (h *authHook) pruneWatches(now time.Time) {
	h.mu.Lock()
	ns := h.ns
	var idle []string
	for id, w := range h.watches {
		if now.Sub(w.touched) >= watchPrune {
			idle = append(idle, id)
		}
	}
	h.mu.Unlock()
	if ns == nil {
		return
	}
	for _, id := range idle {
		if len(connsOf(ns, id)) > 0 {
			continue
		}
		h.mu.Lock()
		if w, ok := h.watches[id]; ok && now.Sub(w.touched) >= watchPrune {
			delete(h.watches, id)
			w.stop()
		}
		h.mu.Unlock()
	}
}

// stopWatches ends every watch and waits for their goroutines.
func (h *authHook) stopWatches() {
	h.mu.Lock()
	if h.cancelBase != nil {
		h.cancelBase()
	}
	ws := h.watches
	h.watches = map[string]*keyWatch{}
	h.mu.Unlock()
	for _, w := range ws {
		w.stop()
	}
	h.wg.Wait()
}

// pruner drops idle watches every watchPrune.
func (b *Bus) pruner() {
	t := time.NewTicker(watchPrune)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case now := <-t.C:
			b.hook.pruneWatches(now)
		}
	}
}
