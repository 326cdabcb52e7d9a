package sim

import (
	"fmt"
	"strings"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/itemref"
)

// level returns a *NotSupportedError when method needs a higher interface
// level than maxInterfaceLevel (the catalogue says which).
func (b *Backend) level(method string) error {
	need := catalog.MethodLevel(method)
	if b.knobs.MaxInterfaceLevel >= need {
		return nil
	}
	return &backend.NotSupportedError{Method: method,
		Reason: fmt.Sprintf("ILMXProxyServer%d not available (maxInterfaceLevel %d)", need, b.knobs.MaxInterfaceLevel)}
}

func (b *Backend) invalidHandle(method string, format string, args ...any) error {
	return backend.NewCallError(method, b.knobs.InvalidHandleHResult, fmt.Sprintf(format, args...))
}

// lookupReg finds a registration (STA only).
func (b *Backend) lookupReg(method string, h int32) (*registration, error) {
	reg := b.regs[h]
	if reg == nil {
		return nil, b.invalidHandle(method, "unknown server handle %d", h)
	}
	return reg, nil
}

// lookupItem finds an item of a registration (STA only).
func (b *Backend) lookupItem(method string, h, hi int32) (*registration, *item, error) {
	reg, err := b.lookupReg(method, h)
	if err != nil {
		return nil, nil, err
	}
	it := reg.items[hi]
	if it == nil {
		return nil, nil, b.invalidHandle(method, "unknown item handle %d in server handle %d", hi, h)
	}
	return reg, it, nil
}

// Register creates a registration with its own handle spaces.
func (b *Backend) Register(clientName string) (int32, error) {
	var h int32
	var cerr error
	err := b.call(func() {
		if cerr = b.injected("Register", "", false); cerr != nil {
			return
		}
		h = b.nextReg
		b.nextReg++
		b.regs[h] = &registration{
			handle: h, clientName: clientName, items: make(map[int32]*item),
			users: make(map[int32]*User), bufInterval: b.knobs.BufferedUpdateInterval,
		}
	})
	return h, firstErr(err, cerr)
}

// Unregister ends a registration; live items are cleaned up implicitly with
// a parity warning. Its item handles and user ids die with it.
func (b *Backend) Unregister(h int32) error {
	var cerr error
	err := b.call(func() {
		reg, e := b.lookupReg("Unregister", h)
		if e != nil {
			cerr = e
			return
		}
		if cerr = b.injected("Unregister", "", false); cerr != nil {
			return
		}
		b.unregister(reg)
	})
	return firstErr(err, cerr)
}

func (b *Backend) unregister(reg *registration) {
	if n := len(reg.items); n > 0 {
		b.parityWarning("Unregister(%d) with %d live items: removed implicitly", reg.handle, n)
	}
	for _, it := range reg.sortedItems() {
		b.lateEvent(it)
		b.detach(it)
	}
	reg.users = nil
	reg.bufGen++
	delete(b.regs, reg.handle)
}

// AddItem binds a reference and returns its handle, even for references
// that will never resolve (unless strictAddItem refuses malformed ones).
func (b *Backend) AddItem(h int32, itemDef string) (int32, error) {
	return b.addItem("AddItem", h, itemDef, false)
}

// AddItem2 is AddItem with a context argument (ILMXProxyServer3); the
// simulator ignores the context.
func (b *Backend) AddItem2(h int32, itemDef, itemContext string) (int32, error) {
	if err := b.level("AddItem2"); err != nil {
		return 0, err
	}
	return b.addItem("AddItem2", h, itemDef, false)
}

// AddBufferedItem adds an item whose changes arrive as OnBufferedDataChange
// once advised (ILMXProxyServer5).
func (b *Backend) AddBufferedItem(h int32, itemDef string) (int32, error) {
	if err := b.level("AddBufferedItem"); err != nil {
		return 0, err
	}
	return b.addItem("AddBufferedItem", h, itemDef, true)
}

func (b *Backend) addItem(method string, h int32, itemDef string, buffered bool) (int32, error) {
	var hi int32
	var cerr error
	err := b.call(func() {
		reg, e := b.lookupReg(method, h)
		if e != nil {
			cerr = e
			return
		}
		if cerr = b.injected(method, itemDef, false); cerr != nil {
			return
		}
		r, perr := itemref.Parse(itemDef)
		if perr != nil && b.knobs.StrictAddItem {
			cerr = backend.NewCallError(method, mxtypes.E_INVALIDARG, perr.Error())
			return
		}
		b.nextItemID++
		it := &item{id: b.nextItemID, reg: reg, ref: itemDef, buffered: buffered, alive: true}
		b.resolve(it, r, perr)
		it.handle = reg.allocHandle(b.knobs.HandleReuse)
		reg.items[it.handle] = it
		hi = it.handle
	})
	return hi, firstErr(err, cerr)
}

// RemoveItem releases an item handle (which may then be reused). Removing
// an advised item unadvises it implicitly with a parity warning.
func (b *Backend) RemoveItem(h, hi int32) error {
	return b.itemCall("RemoveItem", h, hi, func(reg *registration, it *item) error {
		if it.advised {
			b.parityWarning("RemoveItem(%d, %d) while advised: unadvised implicitly", h, hi)
		}
		b.lateEvent(it)
		b.detach(it)
		return nil
	})
}

// Advise makes a user connection and schedules the first OnDataChange.
func (b *Backend) Advise(h, hi int32) error {
	return b.itemCall("Advise", h, hi, func(reg *registration, it *item) error {
		b.advise(it, false)
		return nil
	})
}

// AdviseSupervisory makes a supervisory connection (ILMXProxyServer4).
func (b *Backend) AdviseSupervisory(h, hi int32) error {
	if err := b.level("AdviseSupervisory"); err != nil {
		return err
	}
	return b.itemCall("AdviseSupervisory", h, hi, func(reg *registration, it *item) error {
		b.advise(it, true)
		return nil
	})
}

func (b *Backend) advise(it *item, supervisory bool) {
	if it.advised {
		return // a second advise: S_OK, no second initial value
	}
	it.advised, it.supervisory = true, supervisory
	it.adviseGen++
	if it.readsAttribute() {
		it.st.subscribe(it)
		b.follow(it.st)
	}
	key := strings.ToLower(it.ref)
	delay := b.knobs.RebindDelay
	if !b.bound[key] {
		b.bound[key] = true
		delay = b.knobs.FirstBindDelay
	}
	gen := it.adviseGen
	b.after(delay, func() { b.bind(it, gen) })
}

// UnAdvise stops OnDataChange for the item.
func (b *Backend) UnAdvise(h, hi int32) error {
	return b.itemCall("UnAdvise", h, hi, func(reg *registration, it *item) error {
		if it.advised {
			b.lateEvent(it)
		}
		b.unadvise(it)
		return nil
	})
}

// Suspend pauses OnDataChange for an item without removing it.
func (b *Backend) Suspend(h, hi int32) error {
	if err := b.level("Suspend"); err != nil {
		return err
	}
	return b.itemCall("Suspend", h, hi, func(reg *registration, it *item) error {
		it.suspended = true
		b.operationComplete(it)
		return nil
	})
}

// Activate resumes a suspended item and sends its current value if it
// changed meanwhile.
func (b *Backend) Activate(h, hi int32) error {
	if err := b.level("Activate"); err != nil {
		return err
	}
	return b.itemCall("Activate", h, hi, func(reg *registration, it *item) error {
		if it.suspended {
			it.suspended = false
			gen := it.adviseGen
			b.after(b.knobs.UpdateLatency, func() {
				if it.adviseGen == gen {
					b.deliver(it)
				}
			})
		}
		b.operationComplete(it)
		return nil
	})
}

func (b *Backend) operationComplete(it *item) {
	if !b.knobs.EmitOperationComplete {
		return
	}
	reg, h := it.reg.handle, it.handle
	b.after(0, func() {
		b.emit(&mxgatewayv1.Event{
			Family: mxgatewayv1.EventFamily_EVENT_FAMILY_OPERATION_COMPLETE,
			Body: &mxgatewayv1.Event_OperationComplete{OperationComplete: &mxgatewayv1.OperationComplete{
				ServerHandle: reg, ItemHandle: h, Statuses: b.okStatuses(),
			}},
		})
	})
}

// SetBufferedUpdateInterval sets the registration's buffered interval.
func (b *Backend) SetBufferedUpdateInterval(h int32, intervalMs int32) error {
	if err := b.level("SetBufferedUpdateInterval"); err != nil {
		return err
	}
	var cerr error
	err := b.call(func() {
		reg, e := b.lookupReg("SetBufferedUpdateInterval", h)
		if e != nil {
			cerr = e
			return
		}
		if cerr = b.injected("SetBufferedUpdateInterval", "", false); cerr != nil {
			return
		}
		if intervalMs <= 0 {
			cerr = backend.NewCallError("SetBufferedUpdateInterval", mxtypes.E_INVALIDARG, "interval must be positive")
			return
		}
		reg.bufInterval = time.Duration(intervalMs) * time.Millisecond
		reg.bufGen++
		if reg.bufRunning {
			reg.bufRunning = false
			b.ensureBufferedFlush(reg)
		}
	})
	return firstErr(err, cerr)
}

// AuthenticateUser checks a Galaxy user's credentials and returns an id
// valid only in this registration. Bad credentials give id 0 (S_OK), or
// E_INVALIDARG in securityMode osUser.
func (b *Backend) AuthenticateUser(h int32, user, password string) (int32, error) {
	var id int32
	var cerr error
	err := b.call(func() {
		reg, e := b.lookupReg("AuthenticateUser", h)
		if e != nil {
			cerr = e
			return
		}
		if cerr = b.injected("AuthenticateUser", "", false); cerr != nil {
			return
		}
		name := user
		if b.knobs.SecurityMode == SecurityOSUser {
			// OS-user security names users as ArchestrAUserToId does:
			// DOMAIN\user is the user.
			name = accountName(name)
		}
		u := b.findUser(name)
		if u == nil || u.Password != password {
			if b.knobs.SecurityMode == SecurityOSUser {
				cerr = backend.NewCallError("AuthenticateUser", mxtypes.E_INVALIDARG, "bad credentials")
			}
			return
		}
		id = b.newUserID(reg, u)
	})
	return id, firstErr(err, cerr)
}

// ArchestrAUserToId maps an ArchestrA user identity (name, or DOMAIN\name)
// to a write user id of this registration; 0 when unknown.
func (b *Backend) ArchestrAUserToId(h int32, identity string) (int32, error) {
	if err := b.level("ArchestrAUserToId"); err != nil {
		return 0, err
	}
	var id int32
	var cerr error
	err := b.call(func() {
		reg, e := b.lookupReg("ArchestrAUserToId", h)
		if e != nil {
			cerr = e
			return
		}
		if cerr = b.injected("ArchestrAUserToId", "", false); cerr != nil {
			return
		}
		if u := b.findUser(accountName(identity)); u != nil {
			id = b.newUserID(reg, u)
		}
	})
	return id, firstErr(err, cerr)
}

// accountName strips the domain of DOMAIN\name.
func accountName(identity string) string {
	if i := strings.LastIndexByte(identity, '\\'); i >= 0 {
		return identity[i+1:]
	}
	return identity
}

func (b *Backend) findUser(name string) *User {
	for i := range b.model.Users {
		if strings.EqualFold(b.model.Users[i].Name, name) {
			return &b.model.Users[i]
		}
	}
	return nil
}

// newUserID allocates a user id unique across the backend, so an id of one
// registration is never valid in another.
func (b *Backend) newUserID(reg *registration, u *User) int32 {
	id := b.nextUserID
	b.nextUserID++
	reg.users[id] = u
	return id
}

// itemCall runs fn for a valid item of a valid registration.
func (b *Backend) itemCall(method string, h, hi int32, fn func(*registration, *item) error) error {
	var cerr error
	err := b.call(func() {
		reg, it, e := b.lookupItem(method, h, hi)
		if e != nil {
			cerr = e
			return
		}
		if cerr = b.injected(method, it.ref, it.obj != nil && it.obj.builtin); cerr != nil {
			return
		}
		cerr = fn(reg, it)
	})
	return firstErr(err, cerr)
}

// lateEvent sends one more OnDataChange after UnAdvise/RemoveItem returned
// when the lateEventAfterUnadvise fault is on.
func (b *Backend) lateEvent(it *item) {
	if !b.fault.lateEvent || !it.advised || !it.delivered || it.buffered {
		return
	}
	val, q, ts, sts := b.view(it)
	ghost := &item{reg: it.reg, handle: it.handle}
	b.after(0, func() { b.send(ghost, val, q, ts, sts) })
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// releaseAll is Close's implicit cleanup on the STA: whatever the worker's
// teardown (itemtable.Teardown, in MXAccess order) left is released without
// MXAccess calls, injected faults or events, as releasing the COM object
// would. It returns one warning when anything was left.
func (b *Backend) releaseAll() []string {
	var warns []string
	items := 0
	for _, reg := range b.regs {
		items += len(reg.items)
	}
	if n := len(b.regs); n > 0 {
		warns = append(warns, fmt.Sprintf("sim: Close with %d registrations and %d items still held: released without the MXAccess teardown", n, items))
	}
	b.fault.lateEvent = false
	b.silenced = true
	for _, reg := range b.sortedRegs() {
		for _, it := range reg.sortedItems() {
			b.detach(it)
		}
		reg.users = nil
		reg.bufGen++
		delete(b.regs, reg.handle)
	}
	return warns
}

func (b *Backend) sortedRegs() []*registration {
	out := make([]*registration, 0, len(b.regs))
	for h := int32(1); len(out) < len(b.regs) && h < b.nextReg; h++ {
		if r := b.regs[h]; r != nil {
			out = append(out, r)
		}
	}
	return out
}
