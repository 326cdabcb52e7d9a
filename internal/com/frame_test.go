package com

import (
	"math/rand/v2"
	"testing"
)

// takeAll carves parts out of a frame of size bytes; it reports whether
// Take ran out (panicked).
func takeAll(size uintptr, parts []uintptr) (exhausted bool) {
	defer func() {
		if recover() != nil {
			exhausted = true
		}
	}()
	f := &Frame{base: 0x10000, size: size}
	for _, p := range parts {
		if a := f.Take(p); a%frameAlign != 0 {
			panic("misaligned part")
		}
	}
	return false
}

// TestFrameSizeHoldsItsParts checks that FrameSize accounts for Take's
// alignment padding, for random part lists, and that it is the smallest
// such size.
func TestFrameSizeHoldsItsParts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		parts := make([]uintptr, 1+r.IntN(6))
		for j := range parts {
			parts[j] = uintptr(1 + r.IntN(40))
		}
		size := FrameSize(parts...)
		if takeAll(size, parts) {
			t.Fatalf("FrameSize(%v) = %d is too small", parts, size)
		}
		if !takeAll(size-1, parts) {
			t.Fatalf("FrameSize(%v) = %d is not the smallest size", parts, size)
		}
	}
}

// TestGetIDOfNameFrameFitsEveryName is the regression test for a frame of
// GetIDOfName sized as 2*len+32: the padding after a name whose length is
// not a multiple of 4 overflowed it, so resolving "Register" (and most
// other names) panicked on the STA under Wine.
func TestGetIDOfNameFrameFitsEveryName(t *testing.T) {
	for units := 1; units <= 256; units++ {
		parts := idsOfNameParts(units)
		if takeAll(FrameSize(parts...), parts) {
			t.Fatalf("a name of %d UTF-16 units does not fit its frame", units)
		}
	}
}
