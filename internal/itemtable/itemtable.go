package itemtable

import (
	"cmp"
	"fmt"
	"slices"
	"sync"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
)

// Key names an item: its registration (hLMX) and item handle (hItem).
type Key struct {
	Server, Item int32
}

// String formats the key as "(server, item)".
func (k Key) String() string { return fmt.Sprintf("(%d, %d)", k.Server, k.Item) }

// Item is what the table knows about one item.
type Item struct {
	// Ref is the reference the item was added with, exactly as given.
	Ref string
	// Buffered is true for an AddBufferedItem item.
	Buffered bool
	// Advised is true between a successful Advise (or AdviseSupervisory)
	// and UnAdvise.
	Advised bool
	// Supervisory is true when the advise was AdviseSupervisory.
	Supervisory bool
	// Suspended is true between Suspend and Activate (or UnAdvise).
	Suspended bool
	// Leftover is true for an item no command added: a ReadBulk transient
	// item whose cleanup MXAccess refused (see AddLeftover).
	Leftover bool
}

// Entry is one item of a snapshot.
type Entry struct {
	Key
	Item
}

// Table is one session's item table: its registrations, and for every item
// handle the reference and advise state. The worker keeps the
// authoritative one, applying every MXAccess call it makes; the gateway
// keeps a mirror, applying every reply the worker sends, in the order the
// worker ran the commands, whether or not the caller was still waiting.
// Both use Apply, so they agree. A Table is safe for concurrent use.
type Table struct {
	mu    sync.RWMutex
	regs  map[int32]struct{}
	items map[Key]*Item
}

// New returns an empty table.
func New() *Table {
	return &Table{regs: make(map[int32]struct{}), items: make(map[Key]*Item)}
}

// Apply updates the table from a command and the worker's reply to it,
// driven by the catalogue: a single command's effect when MXAccess accepted
// it; for a bulk form, the effect of every step each entry's outcome says
// succeeded (an add step records the entry's new handle; later steps run on
// it); nothing for a denied entry, a refused call, a command that did not
// run (cancelled) or a command without an effect. A nil reply changes
// nothing.
func (t *Table) Apply(cmd *mxgatewayv1.Command, reply *mxgatewayv1.Reply) {
	k := catalog.Of(cmd)
	if k == nil || reply == nil || !k.Changes() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if k.IsSingle() {
		if reply.GetStatus() != mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK {
			return
		}
		u := single(cmd, k)
		t.applyLocked(k.Effect(), Key{k.ServerHandle(cmd), u.Item}, u.Ref, resultHandle(k, reply))
		return
	}
	entries := reply.GetBulk().GetEntries()
	if len(entries) != k.Inputs(cmd) {
		return // not a per-entry reply: nothing ran
	}
	steps := k.Steps()
	for i, e := range entries {
		if e.GetDenial() != nil {
			continue
		}
		in := k.Input(cmd, i)
		item := in.Item
		for j := range steps {
			sk := k.StepKind(cmd, j)
			ran, ok := stepOutcome(e, j, sk)
			if !ran {
				break
			}
			if !ok {
				if k.BestEffort() {
					continue
				}
				break
			}
			eff := sk.Effect()
			if eff == mxgatewayv1.ItemEffect_ITEM_EFFECT_ADD || eff == mxgatewayv1.ItemEffect_ITEM_EFFECT_ADD_BUFFERED {
				item = e.GetItemHandle()
			}
			t.applyLocked(eff, Key{in.Server, item}, in.Ref, item)
		}
	}
}

// single returns the reference or item handle a single command names.
func single(cmd *mxgatewayv1.Command, k *catalog.Kind) catalog.Use {
	if uses := catalog.Uses(cmd); len(uses) == 1 {
		return uses[0]
	}
	return catalog.Use{}
}

func resultHandle(k *catalog.Kind, reply *mxgatewayv1.Reply) int32 {
	switch k.Result() {
	case mxgatewayv1.CommandResult_COMMAND_RESULT_SERVER_HANDLE:
		return reply.GetRegister().GetServerHandle()
	case mxgatewayv1.CommandResult_COMMAND_RESULT_ITEM_HANDLE:
		return reply.GetItemHandle().GetItemHandle()
	}
	return 0
}

// stepOutcome says whether step j of a bulk entry ran and whether MXAccess
// accepted it. A successful entry ran every step; a failed one lists its
// calls (BulkEntryResult.calls), or, from a worker that does not, is read
// as "every step before failed_method succeeded".
func stepOutcome(e *mxgatewayv1.BulkEntryResult, j int, sk *catalog.Kind) (ran, ok bool) {
	if e.GetStatus() == mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK {
		return true, true
	}
	if calls := e.GetCalls(); len(calls) > 0 {
		if j >= len(calls) {
			return false, false
		}
		return true, calls[j].GetStatus() == mxgatewayv1.GatewayStatusCode_GATEWAY_STATUS_CODE_OK
	}
	if sk.Method() == e.GetFailedMethod() || e.GetFailedMethod() == "" {
		return true, false
	}
	return true, true
}

// applyLocked applies one effect. handle is the new handle of a register or
// an add.
func (t *Table) applyLocked(eff mxgatewayv1.ItemEffect, key Key, ref string, handle int32) {
	switch eff {
	case mxgatewayv1.ItemEffect_ITEM_EFFECT_REGISTER:
		if handle > 0 {
			t.regs[handle] = struct{}{}
		}
	case mxgatewayv1.ItemEffect_ITEM_EFFECT_UNREGISTER:
		delete(t.regs, key.Server)
		for k := range t.items {
			if k.Server == key.Server {
				delete(t.items, k)
			}
		}
	case mxgatewayv1.ItemEffect_ITEM_EFFECT_ADD, mxgatewayv1.ItemEffect_ITEM_EFFECT_ADD_BUFFERED:
		if handle > 0 {
			// MXAccess reuses handles: an add replaces whatever the handle
			// named before.
			t.items[Key{key.Server, handle}] = &Item{Ref: ref, Buffered: eff == mxgatewayv1.ItemEffect_ITEM_EFFECT_ADD_BUFFERED}
		}
	case mxgatewayv1.ItemEffect_ITEM_EFFECT_REMOVE:
		delete(t.items, key)
	case mxgatewayv1.ItemEffect_ITEM_EFFECT_ADVISE, mxgatewayv1.ItemEffect_ITEM_EFFECT_ADVISE_SUPERVISORY:
		// A second advise changes nothing, its connection kind included.
		if it := t.items[key]; it != nil && !it.Advised {
			it.Advised, it.Supervisory = true, eff == mxgatewayv1.ItemEffect_ITEM_EFFECT_ADVISE_SUPERVISORY
		}
	case mxgatewayv1.ItemEffect_ITEM_EFFECT_UNADVISE:
		if it := t.items[key]; it != nil {
			it.Advised, it.Supervisory, it.Suspended = false, false, false
		}
	case mxgatewayv1.ItemEffect_ITEM_EFFECT_SUSPEND:
		if it := t.items[key]; it != nil {
			it.Suspended = true
		}
	case mxgatewayv1.ItemEffect_ITEM_EFFECT_ACTIVATE:
		if it := t.items[key]; it != nil {
			it.Suspended = false
		}
	}
}

// AddLeftover records an item no command added: a ReadBulk transient item
// that MXAccess refused to remove. It keeps the table a superset of what
// MXAccess holds, so teardown removes it and the item guard knows what its
// handle names; the gateway's mirror never hears of it, so a constrained
// write to it is refused.
func (t *Table) AddLeftover(key Key, ref string, advised bool) {
	t.mu.Lock()
	t.items[key] = &Item{Ref: ref, Advised: advised, Leftover: true}
	t.mu.Unlock()
}

// Lookup returns the item of key.
func (t *Table) Lookup(key Key) (Item, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if it := t.items[key]; it != nil {
		return *it, true
	}
	return Item{}, false
}

// Ref returns the reference item handle item of registration server was
// added with; ok is false for a handle the table does not know.
func (t *Table) Ref(server, item int32) (ref string, ok bool) {
	it, ok := t.Lookup(Key{server, item})
	return it.Ref, ok
}

// Holds reports whether the table says key names ref, exactly as added;
// ref "" asks whether key names no item at all. The worker's item guard is
// this check.
func (t *Table) Holds(key Key, ref string) bool {
	it, ok := t.Lookup(key)
	if ref == "" {
		return !ok
	}
	return ok && !it.Leftover && it.Ref == ref
}

// Len is the number of items.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.items)
}

// Registrations returns the registration handles, ascending.
func (t *Table) Registrations() []int32 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]int32, 0, len(t.regs))
	for h := range t.regs {
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}

// Snapshot returns every item, by registration then item handle.
func (t *Table) Snapshot() []Entry {
	t.mu.RLock()
	out := make([]Entry, 0, len(t.items))
	for k, it := range t.items {
		out = append(out, Entry{Key: k, Item: *it})
	}
	t.mu.RUnlock()
	slices.SortFunc(out, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.Server, b.Server), cmp.Compare(a.Key.Item, b.Key.Item))
	})
	return out
}

// Primitives are the MXAccess calls teardown makes (backend.Backend has
// them).
type Primitives interface {
	UnAdvise(serverHandle, itemHandle int32) error
	RemoveItem(serverHandle, itemHandle int32) error
	Unregister(serverHandle int32) error
}

// Teardown runs the MXAccess teardown of MXACCESS.md §2.3 over the table:
// UnAdvise every advised item, then RemoveItem every item, then Unregister
// every registration (each in handle order). Every step is best effort; a
// refused one becomes a warning and teardown goes on. The table is empty
// afterwards.
func Teardown(t *Table, be Primitives) (warnings []string) {
	items := t.Snapshot()
	regs := t.Registrations()
	step := func(name string, err error) {
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("teardown %s: %v", name, err))
		}
	}
	for _, e := range items {
		if e.Advised {
			step(fmt.Sprintf("UnAdvise(%d, %d)", e.Server, e.Key.Item), be.UnAdvise(e.Server, e.Key.Item))
		}
	}
	for _, e := range items {
		step(fmt.Sprintf("RemoveItem(%d, %d)", e.Server, e.Key.Item), be.RemoveItem(e.Server, e.Key.Item))
	}
	for _, h := range regs {
		step(fmt.Sprintf("Unregister(%d)", h), be.Unregister(h))
	}
	t.mu.Lock()
	clear(t.regs)
	clear(t.items)
	t.mu.Unlock()
	return warnings
}
