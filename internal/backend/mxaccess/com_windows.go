//go:build windows && 386

package mxaccess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unsafe"

	ole "github.com/go-ole/go-ole"
	"golang.org/x/sys/windows/registry"

	"github.com/mxgateway/mxgateway/internal/com"
	"github.com/mxgateway/mxgateway/internal/variant"
)

// interfaceIIDs are the ILMXProxyServer..5 IIDs (MXACCESS.md §1), index =
// level - 1.
var interfaceIIDs = [5]com.GUID{
	com.MustParseGUID("{CCE67FB7-EAFD-4367-9212-617043BF126D}"),
	com.MustParseGUID("{020A8A87-69C5-497F-A893-B629E669FBFF}"),
	com.MustParseGUID("{57D006B6-F25E-4654-A81E-BCBAFD60FE59}"),
	com.MustParseGUID("{9DC0D5C1-9371-4E84-86F8-7091D316A66C}"),
	com.MustParseGUID("{ECEFF506-A752-46E3-9E31-0A8E257C9926}"),
}

type binding struct {
	disp   uintptr
	dispid int32
	shape  *variant.Shape
}

type connection struct {
	cp     uintptr
	sink   uintptr
	cookie uint32
	iid    com.GUID
}

// comObject is the windows/386 Object: the MXAccess COM object living on
// its own STA. Every field holding a COM pointer is touched only on the
// STA (inside sta.Do).
type comObject struct {
	sta    *com.STA
	logger *slog.Logger

	unk    uintptr
	disp   uintptr
	ifaces [5]uintptr // QueryInterface results per level (0 = not obtained)

	info     ObjectInfo
	methods  map[string]binding
	conns    []connection
	discover Discovery
}

var _ Object = (*comObject)(nil)

// OpenCOM is the Opener of the real backend: it starts an STA, creates the
// object by ProgID on it, reads the type library, resolves DISPIDs and
// connects the event sinks, all before the first call.
func OpenCOM(ctx context.Context, cfg OpenConfig, events EventHandler) (Object, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sta, err := com.StartSTA(com.STAOptions{Logger: logger})
	if err != nil {
		return nil, err
	}
	o := &comObject{sta: sta, logger: logger, methods: map[string]binding{}}
	var createErr error
	// Creation is not cancelled by ctx: a half-created object must be
	// released on the STA, which Close does.
	if err := sta.Do(func() { createErr = o.create(cfg, events) }); err != nil {
		createErr = errors.Join(createErr, err)
	}
	if createErr != nil {
		for _, w := range o.Close() {
			logger.Warn("teardown after failed create", "warning", w)
		}
		return nil, createErr
	}
	return o, nil
}

// create runs on the STA.
func (o *comObject) create(cfg OpenConfig, events EventHandler) error {
	progID := cfg.ProgID
	clsid, err := ole.CLSIDFromProgID(progID)
	if err != nil {
		return fmt.Errorf("CLSIDFromProgID(%q): %w", progID, err)
	}
	o.info.ProgID = progID
	o.info.CLSID = clsid.String()
	o.info.DLLPath, o.info.ThreadingModel = inprocServer(o.info.CLSID)

	// go-ole is used for instance creation only before any sink exists, so
	// its stack-held out-parameters cannot be disturbed by a callback.
	unk, err := ole.CreateInstance(clsid, ole.IID_IUnknown)
	if err != nil {
		return fmt.Errorf("CoCreateInstance(%s): %w", o.info.CLSID, err)
	}
	o.unk = uintptr(unsafe.Pointer(unk))
	if o.disp, err = com.QueryInterface(o.unk, com.IID_IDispatch); err != nil {
		return err
	}
	for i, iid := range interfaceIIDs {
		li := LevelInfo{Level: i + 1, IID: iid.String()}
		if p, err := com.QueryInterface(o.unk, iid); err == nil {
			o.ifaces[i] = p
			o.info.Level = i + 1
			li.Obtained = true
		}
		o.discover.Levels = append(o.discover.Levels, li)
	}
	if o.info.Level == 0 {
		return errors.New("object implements none of ILMXProxyServer..5")
	}

	tl, shapes, dual := o.readTypeLibrary()
	if tl != 0 {
		defer tl.Release()
	}
	for i := range o.discover.Levels {
		o.discover.Levels[i].Dual = dual[i]
	}
	o.resolveMethods(shapes, dual)
	if err := o.connectEvents(tl, events, cfg.SetStatusLayout); err != nil {
		return err
	}
	return nil
}

// inprocServer reads the server DLL path and threading model from the
// 32-bit registry view (HKCR\Wow6432Node\CLSID\{clsid}\InprocServer32 on a
// 64-bit host).
func inprocServer(clsid string) (string, string) {
	k, err := registry.OpenKey(registry.CLASSES_ROOT, `CLSID\`+clsid+`\InprocServer32`, registry.QUERY_VALUE|registry.WOW64_32KEY)
	if err != nil {
		return "", ""
	}
	defer k.Close()
	path, _, _ := k.GetStringValue("")
	tm, _, _ := k.GetStringValue("ThreadingModel")
	return path, tm
}

// readTypeLibrary reads the shapes of every method and whether each
// interface level is dual (so its pointer may be used as an IDispatch).
func (o *comObject) readTypeLibrary() (com.TypeLib, map[string]methodTypeInfo, [5]bool) {
	shapes := map[string]methodTypeInfo{}
	var dual [5]bool
	ti, err := com.DispatchTypeInfo(o.disp)
	if err != nil {
		o.note("no type information from IDispatch::GetTypeInfo: %v; unverified methods will be refused", err)
		return 0, shapes, dual
	}
	defer ti.Release()
	tl, err := ti.TypeLib()
	if err != nil {
		o.note("no containing type library: %v", err)
	} else if v, err := tl.Version(); err == nil {
		o.info.TypeLibVersion = v
	}
	if tl != 0 {
		for i, iid := range interfaceIIDs {
			if o.ifaces[i] == 0 {
				continue
			}
			lti, err := tl.TypeInfoOfGUID(iid)
			if err != nil {
				o.note("ILMXProxyServer%d not in the type library: %v", i+1, err)
				continue
			}
			if a, err := lti.Attr(); err == nil {
				dual[i] = a.TypeFlags&variant.TYPEFLAG_FDUAL != 0 || a.TypeKind == variant.TKIND_DISPATCH
			}
			o.collectShapes(lti, i+1, shapes)
			lti.Release()
		}
	}
	// The default IDispatch's own type information covers hosts whose
	// type library does not list the interfaces by IID.
	o.collectShapes(ti, 0, shapes)
	return tl, shapes, dual
}

type methodTypeInfo struct {
	shape  variant.Shape
	params []string
	level  int
}

func (o *comObject) collectShapes(ti com.TypeInfo, level int, into map[string]methodTypeInfo) {
	members, err := ti.Members()
	if err != nil {
		o.note("reading members (level %d): %v", level, err)
	}
	for _, m := range members {
		if _, ok := methodSpecs[m.Name]; !ok {
			continue
		}
		if _, seen := into[m.Name]; seen {
			continue
		}
		into[m.Name] = methodTypeInfo{shape: variant.ShapeOf(m.Desc), params: m.ParamNames, level: level}
	}
}

// resolveMethods finds a DISPID for every method, on the pointer of the
// highest dual interface first (MXACCESS.md §8.2: whether the default
// IDispatch exposes the ILMXProxyServer4/5 methods depends on the
// interfaces being dual [unverified]), then on the default IDispatch. A
// non-dual interface pointer is never called as an IDispatch: its vtable
// slots 3-6 would be other methods.
func (o *comObject) resolveMethods(shapes map[string]methodTypeInfo, dual [5]bool) {
	type candidate struct {
		disp uintptr
		name string
	}
	var cands []candidate
	for i := 4; i >= 0; i-- {
		if o.ifaces[i] != 0 && dual[i] {
			cands = append(cands, candidate{o.ifaces[i], fmt.Sprintf("ILMXProxyServer%d", i+1)})
		}
	}
	cands = append(cands, candidate{o.disp, "IDispatch"})
	for _, name := range MethodNames() {
		want, _ := ExpectedShape(name)
		md := MethodDiscovery{Name: name, Expected: want.String()}
		for _, c := range cands {
			id, err := com.GetIDOfName(c.disp, name)
			if err != nil {
				continue
			}
			b := binding{disp: c.disp, dispid: id}
			if s, ok := shapes[name]; ok {
				sh := s.shape
				b.shape = &sh
				md.Shape = sh.String()
				md.Params = s.params
			}
			o.methods[name] = b
			md.Found, md.DispID, md.Via = true, id, c.name
			break
		}
		o.discover.Methods = append(o.discover.Methods, md)
		o.logger.Debug("mxaccess method", "method", name, "found", md.Found, "dispid", md.DispID,
			"via", md.Via, "typelib_shape", md.Shape, "expected", md.Expected)
	}
}

// connectEvents enumerates the connection points, identifies the event
// interfaces from the type library, takes their DISPIDs from it, and
// advises one sink per event interface. It also reads MXSTATUS_PROXY's
// layout from OnDataChange's status parameter.
func (o *comObject) connectEvents(tl com.TypeLib, events EventHandler, setLayout func(variant.StatusLayout) error) error {
	cps, err := com.ConnectionPoints(o.unk)
	if err != nil {
		return fmt.Errorf("enumerate connection points: %w", err)
	}
	wanted := map[string]bool{}
	for _, n := range EventNames {
		wanted[n] = true
	}
	haveDataChange := false
	type pending struct {
		cp      com.ConnectionPoint
		members map[int32]string
		idx     int
	}
	var toAdvise []pending
	for _, cp := range cps {
		ei := EventInterface{IID: cp.IID.String()}
		members := map[int32]string{}
		if tl == 0 {
			ei.Ignored = "no type library to identify it"
		} else if eti, err := tl.TypeInfoOfGUID(cp.IID); err != nil {
			ei.Ignored = "not in the type library: " + err.Error()
		} else {
			ei.Name, _ = eti.Name()
			ms, err := eti.Members()
			if err != nil {
				o.note("members of %s: %v", ei.Name, err)
			}
			for _, m := range ms {
				if !wanted[m.Name] {
					continue
				}
				members[m.Desc.MemID] = m.Name
				em := EventMember{Name: m.Name, DispID: m.Desc.MemID, Params: m.ParamNames}
				for _, p := range m.Desc.Params {
					em.Types = append(em.Types, p.Type.String())
				}
				ei.Members = append(ei.Members, em)
				if m.Name == EventOnDataChange {
					haveDataChange = true
					o.readStatusLayout(eti, m.Desc)
				}
			}
			eti.Release()
			if len(members) == 0 {
				ei.Ignored = "declares none of " + strings.Join(EventNames, ", ")
			}
		}
		o.discover.Events = append(o.discover.Events, ei)
		if len(members) == 0 {
			com.Release(cp.CP)
			continue
		}
		toAdvise = append(toAdvise, pending{cp: cp, members: members, idx: len(o.discover.Events) - 1})
	}
	if !haveDataChange {
		for _, p := range toAdvise {
			com.Release(p.cp.CP)
		}
		return errors.New("no connection point for _ILMXProxyServerEvents.OnDataChange identified in the type library")
	}
	// The decoder must know the layout before the first event can arrive.
	if o.info.StatusLayout != (variant.StatusLayout{}) && setLayout != nil {
		if err := setLayout(o.info.StatusLayout); err != nil {
			for _, p := range toAdvise {
				com.Release(p.cp.CP)
			}
			return fmt.Errorf("MXSTATUS_PROXY layout from the type library: %w", err)
		}
	}
	// Advise last: from here on, COM may call into Go on this thread.
	for _, p := range toAdvise {
		sink, err := com.NewEventSink(com.SinkConfig{
			IID:     p.cp.IID,
			Members: p.members,
			Handle: func(name string, dispid int32, args []variant.Value, err error) {
				events(name, args, err)
			},
		})
		if err != nil {
			com.Release(p.cp.CP)
			return err
		}
		cookie, err := com.Advise(p.cp.CP, sink)
		if err != nil {
			com.ReleaseSink(sink)
			com.Release(p.cp.CP)
			return fmt.Errorf("advise %s: %w", p.cp.IID, err)
		}
		o.conns = append(o.conns, connection{cp: p.cp.CP, sink: sink, cookie: cookie, iid: p.cp.IID})
		o.discover.Events[p.idx].Advised = true
		o.discover.Events[p.idx].Cookie = cookie
		o.logger.Info("event sink connected", "interface", o.discover.Events[p.idx].Name, "iid", p.cp.IID.String(),
			"members", fmt.Sprint(o.discover.Events[p.idx].Members))
	}
	return nil
}

// readStatusLayout takes MXSTATUS_PROXY's layout from the record type of
// OnDataChange's last parameter (VT_PTR → VT_SAFEARRAY → VT_USERDEFINED).
// A complete description replaces the compiled-in [unverified] layout; a
// missing or partial one keeps it, and decoding then still refuses arrays
// whose element size differs.
func (o *comObject) readStatusLayout(eti com.TypeInfo, d variant.FuncDesc) {
	if len(d.Params) == 0 {
		return
	}
	t := d.Params[len(d.Params)-1].Type
	for t.Elem != nil && (t.VT == variant.VT_PTR || t.VT == variant.VT_SAFEARRAY) {
		t = *t.Elem
	}
	if t.VT != variant.VT_USERDEFINED {
		o.discover.StatusNote = "status parameter is " + d.Params[len(d.Params)-1].Type.String() + "; compiled-in layout used"
		return
	}
	rti, err := eti.RefTypeInfo(t.HRef)
	if err != nil {
		o.discover.StatusNote = "status record type unavailable: " + err.Error()
		return
	}
	defer rti.Release()
	size, fields, err := rti.RecordFields()
	o.discover.StatusSize, o.discover.StatusField = size, fields
	if err != nil {
		o.discover.StatusNote = "status record unreadable: " + err.Error()
		return
	}
	l, err := variant.StatusLayoutFromFields(size, fields)
	if err != nil {
		o.discover.StatusNote = "status record not understood (" + err.Error() + "); compiled-in layout used"
		return
	}
	o.info.StatusLayout = l
	if l != variant.DefaultStatusLayout {
		o.discover.StatusNote = fmt.Sprintf("type library layout %+v DIFFERS from the compiled-in %+v and is used", l, variant.DefaultStatusLayout)
		o.logger.Warn("MXSTATUS_PROXY layout differs from the compiled-in one", "typelib", fmt.Sprintf("%+v", l))
		return
	}
	o.discover.StatusNote = "matches the compiled-in layout"
}

func (o *comObject) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	o.discover.Notes = append(o.discover.Notes, s)
	o.logger.Warn("mxaccess discovery", "note", s)
}

// Info implements Object.
func (o *comObject) Info() ObjectInfo { return o.info }

// Discovery returns what create learned.
func (o *comObject) Discovery() Discovery { return o.discover }

// Method implements Object.
func (o *comObject) Method(name string) (MethodInfo, bool) {
	b, ok := o.methods[name]
	if !ok {
		return MethodInfo{}, false
	}
	return MethodInfo{DispID: b.dispid, Shape: b.shape}, true
}

// Invoke implements Object.
func (o *comObject) Invoke(name string, args []variant.Value, outs []variant.VT) (CallResult, error) {
	b, ok := o.methods[name]
	if !ok {
		return CallResult{}, fmt.Errorf("mxaccess: no DISPID for %s", name)
	}
	var res com.InvokeResult
	var callErr error
	if err := o.sta.Do(func() { res, callErr = com.Invoke(b.disp, b.dispid, args, outs) }); err != nil {
		return CallResult{}, err
	}
	if callErr != nil {
		return CallResult{}, callErr
	}
	out := CallResult{HRESULT: int32(res.HRESULT), Ret: res.Ret, Outs: res.Outs}
	switch {
	case res.HRESULT == com.DISP_E_EXCEPTION && res.Excep != nil:
		// A vtable caller (.NET) sees the exception's code, not
		// DISP_E_EXCEPTION; keep that, with the text.
		if hr := res.Excep.HRESULT(); hr != 0 {
			out.HRESULT = hr
		}
		out.Message = strings.TrimSpace(res.Excep.Message() + " (via DISP_E_EXCEPTION)")
	case res.HRESULT == com.DISP_E_TYPEMISMATCH || res.HRESULT == 0x80020004 /* DISP_E_PARAMNOTFOUND */ :
		n := len(args) + len(outs)
		out.Message = fmt.Sprintf("argument %d rejected by IDispatch::Invoke", n-1-int(res.ArgErr))
	}
	return out, nil
}

// Ping implements Object.
func (o *comObject) Ping(ctx context.Context) error { return o.sta.Ping(ctx) }

// Close implements Object: Unadvise every sink, release every interface,
// then end the STA, which calls CoUninitialize last.
func (o *comObject) Close() []string {
	var warns []string
	err := o.sta.Do(func() {
		for _, c := range o.conns {
			if err := com.Unadvise(c.cp, c.cookie); err != nil {
				warns = append(warns, fmt.Sprintf("Unadvise %s: %v", c.iid, err))
			}
			com.Release(c.cp)
			// Drop our own reference; the block is freed when COM has let go.
			com.ReleaseSink(c.sink)
		}
		o.conns = nil
		for i, p := range o.ifaces {
			com.Release(p)
			o.ifaces[i] = 0
		}
		com.Release(o.disp)
		com.Release(o.unk)
		o.disp, o.unk = 0, 0
	})
	if err != nil {
		warns = append(warns, "release on STA: "+err.Error())
	}
	if err := o.sta.Close(); err != nil {
		warns = append(warns, "STA close: "+err.Error())
	}
	return warns
}
