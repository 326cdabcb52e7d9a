package sim

import (
	"math"
	"time"

	"github.com/mxgateway/mxgateway/api/mxgateway/v1/mxtypes"
)

// genState is a generator's progress (STA only).
type genState struct {
	index int // square/toggle: current value; script: next step
}

// startGenerator schedules an attribute's generator from Open.
func (b *Backend) startGenerator(st *attrState) {
	g := st.attr.Generator
	if g == nil || g.Kind == GenConstant {
		return
	}
	if g.Kind == GenScript {
		if len(g.Steps) > 0 {
			b.schedule(b.start.Add(g.Steps[0].After), func() { b.scriptStep(st) })
		}
		return
	}
	if g.Kind == GenSquare || g.Kind == GenToggle {
		// Start from the value matching the initial one, if any.
		for i, v := range g.Values {
			if valueEqual(v, st.value) {
				st.gen.index = i
			}
		}
	}
	var tick func(due time.Time)
	tick = func(due time.Time) {
		b.schedule(due, func() {
			b.generate(st)
			next := due.Add(g.Every)
			// After a long hang, skip the missed ticks instead of replaying them.
			if behind := b.clock.Now().Sub(next); behind > 10*g.Every {
				next = next.Add(behind.Truncate(g.Every))
			}
			tick(next)
		})
	}
	tick(b.start.Add(g.Every))
}

// generate computes one tick of a periodic generator.
func (b *Backend) generate(st *attrState) {
	g := st.attr.Generator
	dt := st.attr.Type
	cur := numeric(st.value)
	switch g.Kind {
	case GenRamp, GenCounter:
		v := cur + g.Step
		if v > g.Max {
			v = g.Min
		} else if v < g.Min {
			v = g.Max
		}
		b.setAttr(st, fromFloat(dt, v), st.quality, b.now, false)
	case GenRandomWalk:
		v := cur + (b.rng.Float64()*2-1)*g.Step
		v = math.Max(g.Min, math.Min(g.Max, v))
		b.setAttr(st, fromFloat(dt, v), st.quality, b.now, false)
	case GenSine:
		phase := 2 * math.Pi * float64(b.now.Sub(b.start)) / float64(g.Period)
		b.setAttr(st, fromFloat(dt, g.Offset+g.Amplitude*math.Sin(phase)), st.quality, b.now, false)
	case GenSquare, GenToggle:
		st.gen.index = (st.gen.index + 1) % len(g.Values)
		b.setAttr(st, g.Values[st.gen.index], st.quality, b.now, false)
	case GenClock:
		b.setAttr(st, mxtypes.TimeValue(b.now), st.quality, b.now, false)
	}
}

// scriptStep applies the next step of a script generator and schedules
// the one after it.
func (b *Backend) scriptStep(st *attrState) {
	g := st.attr.Generator
	s := g.Steps[st.gen.index]
	val, q := st.value, st.quality
	if s.Value != nil {
		val = s.Value
	}
	if s.Quality != nil {
		q = *s.Quality
	}
	b.setAttr(st, val, q, b.now, false)
	st.gen.index++
	if st.gen.index == len(g.Steps) {
		if !g.Loop {
			return
		}
		st.gen.index = 0
	}
	b.after(g.Steps[st.gen.index].After, func() { b.scriptStep(st) })
}
