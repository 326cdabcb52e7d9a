//go:build windows && 386

package alarms

import (
	"context"
	"fmt"
	"unsafe"

	ole "github.com/go-ole/go-ole"

	"github.com/mxgateway/mxgateway/internal/com"
	"github.com/mxgateway/mxgateway/internal/variant"
)

// NativeProgID is the wnwrap alarm consumer's ProgID [inferred from the
// class name WNWRAPCONSUMERLib.wwAlarmConsumerClass; check on a node].
const NativeProgID = "WNWRAPCONSUMERLib.wwAlarmConsumer"

// Native consumer methods [inferred]: looked up by name when the consumer
// opens, so a consumer without them fails to open (and the monitor fails
// over to the subtag provider) instead of failing later.
const (
	nativeInitialize = "InitializeConsumer"
	nativeSetQuery   = "SetXmlAlarmQuery"
	nativeCurrent    = "GetXmlCurrentAlarms2"
	nativeAck        = "AckAlarm"
)

// NativeConsumers returns the factory of the COM consumer: one STA per
// consumer, the object created and called only on it.
func NativeConsumers() ConsumerFactory {
	return func(ctx context.Context, query string) (Consumer, error) {
		sta, err := com.StartSTA(com.STAOptions{})
		if err != nil {
			return nil, err
		}
		c := &comConsumer{sta: sta, ids: map[string]int32{}}
		var openErr error
		if err := sta.DoContext(ctx, func() { openErr = c.open(query) }); err != nil {
			sta.Close()
			return nil, err
		}
		if openErr != nil {
			c.Close()
			return nil, openErr
		}
		return c, nil
	}
}

type comConsumer struct {
	sta  *com.STA
	unk  uintptr
	disp uintptr
	ids  map[string]int32
}

// open runs on the STA.
func (c *comConsumer) open(query string) error {
	clsid, err := ole.CLSIDFromProgID(NativeProgID)
	if err != nil {
		return fmt.Errorf("CLSIDFromProgID(%q): %w", NativeProgID, err)
	}
	unk, err := ole.CreateInstance(clsid, ole.IID_IUnknown)
	if err != nil {
		return fmt.Errorf("CoCreateInstance(%s): %w", NativeProgID, err)
	}
	c.unk = uintptr(unsafe.Pointer(unk))
	if c.disp, err = com.QueryInterface(c.unk, com.IID_IDispatch); err != nil {
		return err
	}
	for _, name := range []string{nativeInitialize, nativeSetQuery, nativeCurrent, nativeAck} {
		id, err := com.GetIDOfName(c.disp, name)
		if err != nil {
			return fmt.Errorf("native alarm consumer has no %s: %w", name, err)
		}
		c.ids[name] = id
	}
	if _, err := c.call(nativeInitialize, variant.BSTR("mxgateway")); err != nil {
		return err
	}
	_, err = c.call(nativeSetQuery, variant.BSTR(query))
	return err
}

// call invokes a method on the STA's thread (the caller is on it).
func (c *comConsumer) call(name string, args ...variant.Value) (variant.Value, error) {
	res, err := com.Invoke(c.disp, c.ids[name], args, nil)
	if err != nil {
		return variant.Value{}, fmt.Errorf("%s: %w", name, err)
	}
	if res.HRESULT != 0 {
		return variant.Value{}, fmt.Errorf("%s: HRESULT 0x%08X", name, res.HRESULT)
	}
	return res.Ret, nil
}

func (c *comConsumer) CurrentXML(ctx context.Context) (string, error) {
	var out string
	var callErr error
	if err := c.sta.DoContext(ctx, func() {
		var v variant.Value
		v, callErr = c.call(nativeCurrent)
		out = v.Str
	}); err != nil {
		return "", err
	}
	return out, callErr
}

func (c *comConsumer) Ack(ctx context.Context, guid, comment string, operator *Credentials) error {
	user := ""
	if operator != nil {
		user = operator.User
	}
	var callErr error
	if err := c.sta.DoContext(ctx, func() {
		_, callErr = c.call(nativeAck, variant.BSTR(guid), variant.BSTR(comment), variant.BSTR(user))
	}); err != nil {
		return err
	}
	return callErr
}

func (c *comConsumer) Close() {
	_ = c.sta.Do(func() {
		if c.disp != 0 {
			com.Release(c.disp)
		}
		if c.unk != 0 {
			com.Release(c.unk)
		}
		c.disp, c.unk = 0, 0
	})
	c.sta.Close()
}
