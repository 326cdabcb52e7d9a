//go:build windows && 386

package mxaccess

import (
	"fmt"
	"unsafe"

	ole "github.com/go-ole/go-ole"

	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/com"
	"github.com/mxgateway/mxgateway/internal/variant"
)

var _ DispatchCreator = (*comObject)(nil)

// ClassExists implements DispatchCreator.
func (o *comObject) ClassExists(progID string) bool {
	ok := false
	_ = o.sta.Do(func() {
		_, err := ole.CLSIDFromProgID(progID)
		ok = err == nil
	})
	return ok
}

// CreateDispatch implements DispatchCreator: the object is created and
// called only on the MXAccess object's STA.
func (o *comObject) CreateDispatch(progID string, methods []string) (Dispatcher, error) {
	d := &comDispatch{sta: o.sta, ids: map[string]int32{}}
	var createErr error
	if err := o.sta.Do(func() { createErr = d.create(progID, methods) }); err != nil {
		return nil, err
	}
	if createErr != nil {
		d.Release()
		return nil, createErr
	}
	return d, nil
}

type comDispatch struct {
	sta  *com.STA
	unk  uintptr
	disp uintptr
	ids  map[string]int32
}

// create runs on the STA.
func (d *comDispatch) create(progID string, methods []string) error {
	clsid, err := ole.CLSIDFromProgID(progID)
	if err != nil {
		return &backend.NotSupportedError{Method: backend.AlarmConsumerMethod, Reason: fmt.Sprintf("CLSIDFromProgID(%q): %v", progID, err)}
	}
	unk, err := ole.CreateInstance(clsid, ole.IID_IUnknown)
	if err != nil {
		return &backend.NotSupportedError{Method: backend.AlarmConsumerMethod, Reason: fmt.Sprintf("CoCreateInstance(%s): %v", progID, err)}
	}
	d.unk = uintptr(unsafe.Pointer(unk))
	if d.disp, err = com.QueryInterface(d.unk, com.IID_IDispatch); err != nil {
		return &backend.NotSupportedError{Method: backend.AlarmConsumerMethod, Reason: fmt.Sprintf("%s has no IDispatch: %v", progID, err)}
	}
	for _, name := range methods {
		id, err := com.GetIDOfName(d.disp, name)
		if err != nil {
			return &backend.NotSupportedError{Method: name, Reason: fmt.Sprintf("%s has no %s: %v", progID, name, err)}
		}
		d.ids[name] = id
	}
	return nil
}

// Invoke implements Dispatcher.
func (d *comDispatch) Invoke(name string, args []variant.Value) (CallResult, error) {
	id, ok := d.ids[name]
	if !ok {
		return CallResult{}, fmt.Errorf("mxaccess: no DISPID for %s", name)
	}
	var res com.InvokeResult
	var callErr error
	if err := d.sta.Do(func() { res, callErr = com.Invoke(d.disp, id, args, nil) }); err != nil {
		return CallResult{}, err
	}
	if callErr != nil {
		return CallResult{}, callErr
	}
	out := CallResult{HRESULT: int32(res.HRESULT), Ret: res.Ret}
	if res.HRESULT == com.DISP_E_EXCEPTION && res.Excep != nil {
		if hr := res.Excep.HRESULT(); hr != 0 {
			out.HRESULT = hr
		}
		out.Message = res.Excep.Message()
	}
	return out, nil
}

// Release implements Dispatcher.
func (d *comDispatch) Release() {
	_ = d.sta.Do(func() {
		if d.disp != 0 {
			com.Release(d.disp)
		}
		if d.unk != 0 {
			com.Release(d.unk)
		}
		d.disp, d.unk = 0, 0
	})
}
