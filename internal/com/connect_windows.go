//go:build windows && 386

package com

import "fmt"

// Connection-point vtable slots (ocidl.h). go-ole's IConnectionPoint.Advise
// takes its cookie out-parameter on the Go stack while Advise calls back
// into our sink's QueryInterface on this goroutine, and its
// GetConnectionInterface and EnumConnectionPoints are not implemented, so
// all of these go through their slots with foreign out-parameters.
const (
	cpcEnumConnectionPoints  = 3
	ecpNext                  = 3
	cpGetConnectionInterface = 3
	cpAdvise                 = 5
	cpUnadvise               = 6
)

// ConnectionPoint is one connection point of an object; Release CP when
// done.
type ConnectionPoint struct {
	CP  uintptr
	IID GUID
}

// ConnectionPoints enumerates the connection points of obj.
func ConnectionPoints(obj uintptr) ([]ConnectionPoint, error) {
	cpc, err := QueryInterface(obj, IID_IConnectionPointContainer)
	if err != nil {
		return nil, err
	}
	defer Release(cpc)
	var out []ConnectionPoint
	err = withFrame(64, func(f *Frame) error {
		enumOut := f.Take(ptrSize)
		if err := hrErr("IConnectionPointContainer::EnumConnectionPoints", vcall(cpc, cpcEnumConnectionPoints, enumOut)); err != nil {
			return err
		}
		enum := uptrAt(enumOut)
		defer Release(enum)
		cpOut := f.Take(ptrSize)
		fetched := f.Take(4)
		iid := f.Take(16)
		for i := 0; i < 64; i++ {
			hr := vcall(enum, ecpNext, 1, cpOut, fetched)
			if hr != S_OK || u32At(fetched) != 1 {
				return hrErr("IEnumConnectionPoints::Next", hr)
			}
			cp := uptrAt(cpOut)
			if err := hrErr("IConnectionPoint::GetConnectionInterface", vcall(cp, cpGetConnectionInterface, iid)); err != nil {
				Release(cp)
				return err
			}
			b, _ := RawMemory{}.Read(uint32(iid), 16)
			out = append(out, ConnectionPoint{CP: cp, IID: GUIDFromBytes(b)})
		}
		return fmt.Errorf("com: more than 64 connection points")
	})
	if err != nil {
		for _, c := range out {
			Release(c.CP)
		}
		return nil, err
	}
	return out, nil
}

// Advise connects sink to cp and returns the cookie. COM AddRefs the sink.
func Advise(cp, sink uintptr) (uint32, error) {
	var cookie uint32
	err := withFrame(16, func(f *Frame) error {
		out := f.Take(4)
		if err := hrErr("IConnectionPoint::Advise", vcall(cp, cpAdvise, sink, out)); err != nil {
			return err
		}
		cookie = u32At(out)
		return nil
	})
	return cookie, err
}

// Unadvise disconnects the sink with cookie; COM Releases it.
func Unadvise(cp uintptr, cookie uint32) error {
	return hrErr("IConnectionPoint::Unadvise", vcall(cp, cpUnadvise, uintptr(cookie)))
}
