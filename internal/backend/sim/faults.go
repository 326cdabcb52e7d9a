package sim

import (
	"path"
	"strings"
	"time"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
	"github.com/mxgateway/mxgateway/internal/backend"
)

// faultState is the fault configuration in effect (STA only).
type faultState struct {
	slowCall    time.Duration
	withhold    bool
	lateEvent   bool
	silentDeath bool
	rules       []*hresultRule // scripted in the model
	simRule     hresultRule    // from Sim.FailMethod / Sim.FailHResult
}

type hresultRule struct {
	method    string // canonical method name; "" disables the rule
	hr        int32
	reference string // lower-case glob; "" matches every call
	remaining int    // calls left; 0 means unlimited
}

// stormChunk is how many storm events go out before the STA looks at
// waiting method calls again.
const stormChunk = 1024

// injected returns the injected HRESULT for a call, if a rule matches.
// Writes to the Sim object are exempt from the Sim.FailMethod rule, so a
// test can always switch it off again.
func (b *Backend) injected(method, ref string, builtin bool) error {
	for i, r := range b.fault.rules {
		if r.matches(method, ref) {
			if r.remaining > 0 {
				r.remaining--
				if r.remaining == 0 {
					b.fault.rules = append(b.fault.rules[:i:i], b.fault.rules[i+1:]...)
				}
			}
			return backend.NewCallError(method, r.hr, "injected fault")
		}
	}
	if !builtin && b.fault.simRule.matches(method, ref) {
		return backend.NewCallError(method, b.fault.simRule.hr, "injected fault (Sim.FailMethod)")
	}
	return nil
}

func (r *hresultRule) matches(method, ref string) bool {
	if r.method == "" || !strings.EqualFold(r.method, method) {
		return false
	}
	if r.reference == "" {
		return true
	}
	ok, _ := path.Match(r.reference, strings.ToLower(ref))
	return ok
}

// crash calls Options.Exit on the STA with the chosen code, or 0 when none
// was chosen (the worker's Exiter then exits with the protocol's simulated
// crash code). If Exit returns (tests), the backend is dead from then on.
func (b *Backend) crash(code int) {
	code = max(code, 0)
	b.log.Warn("simulated crash", "code", code)
	b.mu.Lock()
	b.deadErr = ErrCrashed
	b.mu.Unlock()
	b.halted = true
	b.exit(code)
}

// simWrite applies the side effect of a write to the built-in Sim object,
// after its OnWriteComplete and OnDataChange went out.
func (b *Backend) simWrite(st *attrState, v *mxgatewayv1.MxValue) {
	switch st.attr.Name {
	case SimHangMs:
		if ms := v.GetInt32Value(); ms > 0 {
			b.hang(time.Duration(ms) * time.Millisecond)
		}
	case SimSlowCallMs:
		b.fault.slowCall = time.Duration(max(v.GetInt32Value(), 0)) * time.Millisecond
		b.log.Warn("simulated slow calls", "per_call", b.fault.slowCall)
	case SimStorm:
		if n := v.GetInt32Value(); n > 0 {
			b.storm(int(n))
		}
	case SimQualityFlip:
		if tag := v.GetStringValue(); tag != "" {
			ms := b.simAttr(SimQualityFlipMs).value.GetInt32Value()
			b.qualityFlip(tag, time.Duration(max(ms, 0))*time.Millisecond)
		}
	case SimWithholdWriteComplete:
		b.fault.withhold = v.GetBoolValue()
	case SimLateEventAfterUnadvise:
		b.fault.lateEvent = v.GetBoolValue()
	case SimSilentDeath:
		b.fault.silentDeath = v.GetBoolValue()
	case SimFailMethod, SimFailHResult:
		m, _ := catalog.CanonicalMethod(b.simAttr(SimFailMethod).value.GetStringValue())
		b.fault.simRule = hresultRule{method: m, hr: b.simAttr(SimFailHResult).value.GetInt32Value()}
		if b.fault.simRule.hr >= 0 {
			b.fault.simRule.hr = mxtypes.E_FAIL
		}
	}
}

// slowCallStarted counts a call the slowCall fault is about to delay in
// Sim.SlowCalls, before the delay: a subscriber learns that the call has
// reached the STA (and cannot be dropped from a queue any more).
func (b *Backend) slowCallStarted() {
	st := b.simAttr(SimSlowCalls)
	b.now = b.clock.Now()
	b.setAttr(st, intValue(st.value.GetInt32Value()+1), st.quality, b.now, false)
}

func (b *Backend) simAttr(name string) *attrState {
	return b.attrs[b.model.Object(SimObjectTag).Attribute(name)]
}

// hang stops the STA for d: no calls, no events, Ping blocks.
func (b *Backend) hang(d time.Duration) {
	b.log.Warn("simulated STA hang", "duration", d)
	b.wait(d)
}

// storm emits n changes of Sim.StormValue, in chunks so that calls queued
// behind the storm still run between chunks.
func (b *Backend) storm(n int) {
	b.log.Warn("simulated event storm", "events", n)
	st := b.simAttr(SimStormValue)
	var step func(left int)
	step = func(left int) {
		k := min(left, stormChunk)
		for i := 0; i < k; i++ {
			b.setAttr(st, intValue(st.value.GetInt32Value()+1), st.quality, b.now, false)
		}
		if left > k {
			b.after(0, func() { step(left - k) })
		}
	}
	step(n)
}

// flipQuality is the quality an object's attributes flip to: bad,
// communication failure, value kept.
const flipQuality = mxtypes.QualityBadCommFailure

// qualityFlip turns every attribute of an object bad for d, then restores
// each attribute's quality.
func (b *Backend) qualityFlip(tag string, d time.Duration) {
	obj := b.model.Object(tag)
	if obj == nil {
		b.log.Warn("quality flip of unknown object", "tag", tag)
		return
	}
	b.log.Warn("simulated quality flip", "tag", obj.Tag, "duration", d)
	var flipped []*attrState
	for _, a := range obj.Attributes {
		st := b.attrs[a]
		if st.flipped {
			continue
		}
		st.flipped, st.saved = true, st.quality
		flipped = append(flipped, st)
		b.setAttr(st, st.value, flipQuality, b.now, false)
	}
	b.after(d, func() {
		for _, st := range flipped {
			st.flipped = false
			b.setAttr(st, st.value, st.saved, b.now, false)
		}
	})
}

// scheduleFault arms a fault scripted in the model.
func (b *Backend) scheduleFault(fs FaultScript, at time.Time) {
	b.schedule(at, func() {
		b.fireFault(fs)
		if fs.Every > 0 {
			b.scheduleFault(fs, b.now.Add(fs.Every))
		}
	})
}

func (b *Backend) fireFault(fs FaultScript) {
	switch fs.Kind {
	case FaultCrash:
		b.crash(fs.Code)
	case FaultHang:
		b.hang(fs.Duration)
	case FaultSlowCall:
		b.fault.slowCall = fs.Duration
	case FaultStorm:
		b.storm(fs.Count)
	case FaultQualityFlip:
		b.qualityFlip(fs.Object, fs.Duration)
	case FaultHResult:
		b.fault.rules = append(b.fault.rules, &hresultRule{
			method: fs.Method, hr: fs.HResult, reference: strings.ToLower(fs.Reference), remaining: fs.Calls,
		})
	case FaultWithholdWriteComplete:
		b.fault.withhold = fs.Enabled
	case FaultLateEventAfterUnadvise:
		b.fault.lateEvent = fs.Enabled
	case FaultSilentDeath:
		b.fault.silentDeath = fs.Enabled
	default:
		b.log.Warn("unknown scripted fault ignored", "kind", fs.Kind)
	}
}
