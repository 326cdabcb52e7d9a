package sim

import (
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/backend"
)

// Write writes to an advised item. The reply comes at once; the outcome
// arrives later as OnWriteComplete.
func (b *Backend) Write(h, hi int32, value *mxgatewayv1.MxValue, userID int32) error {
	return b.write(writeReq{method: "Write", h: h, hi: hi, value: value, user: userID})
}

// Write2 is Write with a timestamp that becomes the attribute's time
// (ILMXProxyServer4).
func (b *Backend) Write2(h, hi int32, value *mxgatewayv1.MxValue, ts time.Time, userID int32) error {
	if err := b.level("Write2"); err != nil {
		return err
	}
	return b.write(writeReq{method: "Write2", h: h, hi: hi, value: value, user: userID, ts: &ts})
}

// WriteSecured writes with an authenticated current user and verifier
// (the same id twice for a single-user secured write).
func (b *Backend) WriteSecured(h, hi, currentUserID, verifierUserID int32, value *mxgatewayv1.MxValue) error {
	return b.write(writeReq{method: "WriteSecured", h: h, hi: hi, value: value,
		secured: true, user: currentUserID, verifier: verifierUserID})
}

// WriteSecured2 is WriteSecured with a timestamp (ILMXProxyServer4).
func (b *Backend) WriteSecured2(h, hi, currentUserID, verifierUserID int32, value *mxgatewayv1.MxValue, ts time.Time) error {
	if err := b.level("WriteSecured2"); err != nil {
		return err
	}
	return b.write(writeReq{method: "WriteSecured2", h: h, hi: hi, value: value,
		secured: true, user: currentUserID, verifier: verifierUserID, ts: &ts})
}

type writeReq struct {
	method   string
	h, hi    int32
	value    *mxgatewayv1.MxValue
	ts       *time.Time
	secured  bool
	user     int32
	verifier int32
}

func (b *Backend) write(w writeReq) error {
	var cerr error
	err := b.call(func() { cerr = b.acceptWrite(w) })
	return firstErr(err, cerr)
}

// acceptWrite runs the synchronous part of a write on the STA.
func (b *Backend) acceptWrite(w writeReq) error {
	reg, it, err := b.lookupItem(w.method, w.h, w.hi)
	if err != nil {
		return err
	}
	builtin := it.obj != nil && it.obj.builtin
	if err := b.injected(w.method, it.ref, builtin); err != nil {
		return err
	}
	if !it.advised {
		return backend.NewCallError(w.method, mxtypes.E_INVALIDARG, "item not advised")
	}
	strict := b.knobs.WriteCoercion == WriteCoercionStrict
	var v *mxgatewayv1.MxValue
	ok := false
	switch it.kind {
	case kindValue:
		v, ok = coerce(w.value, it.st.attr.Type, it.st.attr.Dimension, strict)
	case kindElement:
		v, ok = coerce(w.value, it.st.attr.Type, 0, strict)
	case kindBit:
		v, ok = coerce(w.value, tBool, 0, strict)
	}
	if !ok {
		return backend.NewCallError(w.method, mxtypes.E_INVALIDARG, "value type not acceptable for this item")
	}
	if w.ts != nil && w.ts.IsZero() {
		// No timestamp VARIANT (or one that is no time): refused like a
		// value VARIANT the attribute cannot take.
		return backend.NewCallError(w.method, mxtypes.E_INVALIDARG, "timestamp missing or not a valid time")
	}
	pw := &pendingWrite{req: w, it: it, value: v, gen: it.adviseGen}
	pw.allowed, pw.user, pw.verifier = b.checkSecurity(reg, it, w)
	if b.fault.withhold && !builtin {
		return nil // accepted, never completes: the unpumped-STA symptom
	}
	if b.knobs.WritePendingFirst {
		b.after(0, func() { b.writeComplete(it, b.statuses(b.knobs.StatusSuccessValue, catPending, srcRespondingAO, 0)) })
	}
	b.after(b.knobs.UpdateLatency, func() { b.applyWrite(pw) })
	return nil
}

type pendingWrite struct {
	req      writeReq
	it       *item
	value    *mxgatewayv1.MxValue
	gen      uint64
	allowed  bool
	user     *User
	verifier *User
}

// checkSecurity decides whether a write may be made (MXACCESS.md §5.6 and
// §5.7). The decision is taken when the write is accepted.
func (b *Backend) checkSecurity(reg *registration, it *item, w writeReq) (bool, *User, *User) {
	sec := it.st.attr.Security
	user := reg.users[w.user]
	var verifier *User
	if w.secured {
		verifier = reg.users[w.verifier]
	}
	if sec == ViewOnly {
		return false, user, verifier
	}
	if b.knobs.SecurityMode == SecurityNone {
		return true, user, verifier
	}
	need := map[SecurityClassification]string{
		Operate: PermOperate, SecuredWrite: PermOperate, VerifiedWrite: PermOperate,
		Tune: PermTune, Configure: PermConfigure,
	}[sec]
	if sec == FreeAccess {
		return true, user, verifier
	}
	if !w.secured {
		switch {
		case sec == SecuredWrite || sec == VerifiedWrite:
			return false, user, nil // needs WriteSecured
		case w.user == 0:
			// A supervisory connection writes as the client application.
			return it.supervisory, nil, nil
		default:
			return user != nil && user.Has(need), user, nil
		}
	}
	if user == nil || !user.Has(need) {
		return false, user, verifier
	}
	if sec == VerifiedWrite {
		if verifier == nil || w.verifier == w.user || verifier == user || !verifier.Has(PermVerify) {
			return false, user, verifier
		}
	}
	return true, user, verifier
}

// applyWrite completes an accepted write: OnWriteComplete and, when the
// value changed, OnDataChange in writeEchoOrder. Writes to one item are
// applied in acceptance order, so completions are FIFO per item.
func (b *Backend) applyWrite(pw *pendingWrite) {
	it := pw.it
	st := it.st
	if st != nil && b.stale(st) {
		// The item advised just now: the write applies to the Galaxy's
		// value (an element or a bit of it), once it is here.
		st.waiting = append(st.waiting, func() { b.applyWrite(pw) })
		return
	}
	if st == nil {
		// A deploy removed the attribute while the write was in flight.
		b.writeComplete(it, b.failStatuses(catConfig, srcRespondingLmx, 0))
		return
	}
	rec := WriteRecord{
		Time: b.now, Method: pw.req.method, Server: it.reg.handle, Item: it.handle, Reference: it.ref,
		Supervisory: it.supervisory, Attribution: it.reg.clientName, Value: pw.value, Accepted: pw.allowed,
	}
	if pw.user != nil {
		rec.User, rec.Attribution = pw.user.Name, pw.user.Name
	}
	if pw.verifier != nil {
		rec.Verifier = pw.verifier.Name
	}
	b.mu.Lock()
	b.audit = append(b.audit, rec)
	b.mu.Unlock()

	if !pw.allowed {
		b.writeComplete(it, b.failStatuses(catSecurity, srcRespondingAO, 0))
		return
	}
	if st.obj.builtin && st.attr.Name == SimCrash {
		b.crash(int(pw.value.GetInt32Value()))
		return
	}
	newVal := pw.value
	switch it.kind {
	case kindElement:
		newVal = withElement(st.attr.Type, st.value, it.index, pw.value)
	case kindBit:
		base := st.value
		if it.index >= 0 {
			base = mxtypes.ArrayElement(st.value.GetArrayValue(), it.index)
		}
		n := base.GetInt32Value()
		mask := int32(1) << uint(it.bit)
		if pw.value.GetBoolValue() {
			n |= mask
		} else {
			n &^= mask
		}
		newVal = mxtypes.IntegerValue(n)
		if it.index >= 0 {
			newVal = withElement(st.attr.Type, st.value, it.index, newVal)
		}
	}
	ts := b.now
	if pw.req.ts != nil {
		ts = *pw.req.ts
	}
	dataFirst := b.knobs.WriteEchoOrder == EchoDataFirst ||
		(b.knobs.WriteEchoOrder == EchoRandom && b.rng.IntN(2) == 0)
	if !dataFirst {
		b.writeComplete(it, b.statuses(b.knobs.StatusSuccessValue, catOk, srcRespondingAO, 0))
	}
	if !valueEqual(newVal, st.value) {
		b.setAttr(st, newVal, st.quality, ts, pw.req.ts != nil)
	} else if pw.req.ts != nil {
		b.setAttr(st, st.value, st.quality, ts, true)
	}
	if b.galaxy != nil && !st.obj.builtin {
		st.inFlight++
		b.galaxy.Write(st.attr.ord, st.value, st.ts, pw.req.ts != nil, rec.Attribution)
	}
	if dataFirst {
		b.writeComplete(it, b.statuses(b.knobs.StatusSuccessValue, catOk, srcRespondingAO, 0))
	}
	if st.obj.builtin {
		b.simWrite(st, pw.value)
	}
}

// writeComplete emits OnWriteComplete for an item that is still alive
// (nothing is delivered for a removed handle).
func (b *Backend) writeComplete(it *item, sts []*mxgatewayv1.MxStatus) {
	if !it.alive {
		return
	}
	b.emit(&mxgatewayv1.Event{
		Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_WRITE_COMPLETE,
		Body: &mxgatewayv1.Event_WriteComplete{WriteComplete: &mxgatewayv1.OnWriteComplete{
			ServerHandle: it.reg.handle, ItemHandle: it.handle, Statuses: sts,
		}},
	})
}
