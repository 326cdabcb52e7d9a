package com

import "fmt"

// Frame is a block of foreign memory for the pointer arguments of one COM
// call. Windows may call back into Go on this goroutine during the call
// (the event sink, from a modal loop), and a callback can grow and move the
// goroutine stack, so nothing COM writes through may live on the stack.
//
// A frame is carved up by Take, which aligns every part to 8 bytes; size a
// frame with FrameSize over the same parts in the same order, never by
// adding the part sizes up by hand (the padding is easy to forget).
type Frame struct {
	base, size, used uintptr
}

// frameAlign is the alignment of every part Take hands out.
const frameAlign = 8

func alignUp(n uintptr) uintptr { return (n + frameAlign - 1) &^ (frameAlign - 1) }

// FrameSize returns the smallest frame size that holds parts, taken in this
// order with Take.
func FrameSize(parts ...uintptr) uintptr {
	var used uintptr
	for _, p := range parts {
		used = alignUp(used) + p
	}
	return used
}

// Take reserves n bytes (8-byte aligned) and returns their address.
func (f *Frame) Take(n uintptr) uintptr {
	off := alignUp(f.used)
	if off+n > f.size {
		panic(fmt.Sprintf("com: frame of %d bytes exhausted", f.size))
	}
	f.used = off + n
	return f.base + off
}

// idsOfNameParts is the frame layout of GetIDOfName for a member name of
// units UTF-16 code units, the terminating NUL included: the name, the
// one-element name array, the DISPID out-parameter and IID_NULL.
func idsOfNameParts(units int) []uintptr {
	return []uintptr{uintptr(units) * 2, ptrSize, 4, 16}
}
