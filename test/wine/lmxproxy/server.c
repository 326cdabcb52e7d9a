/*
 * Test stand-in for LMXProxy.LMXProxyServer: the COM plumbing.
 *
 * An in-process, apartment-threaded server like LmxProxy.dll: a dual
 * ILMXProxyServer5 (which extends ILMXProxyServer..4, so one vtable answers
 * every level), IDispatch through the registered type library (DispInvoke,
 * as ATL does it), IConnectionPointContainer with one connection point per
 * event interface, and a message-only window created on the creating
 * thread. Every event is fired from that window's messages, so it reaches
 * the sinks only while the caller's STA pumps, as with the real component.
 *
 * Environment (inherited from the gateway by the worker):
 *   MXG_STANDIN_GALAXY    the Galaxy file (see galaxy.c); required
 *   MXG_STANDIN_TRACE_DIR where lmxproxy-<pid>.log records every call and
 *                         event, in order (the suite asserts on it)
 */
#include <stdio.h>
#include <stdarg.h>
#include "standin.h"

HINSTANCE g_inst;
static LONG g_objects, g_locks;
static ITypeLib *g_tl;
static ITypeInfo *g_dispTI, *g_itfTI;
static IRecordInfo *g_recinfo;
static DISPID g_idDataChange, g_idWriteComplete, g_idOpComplete, g_idBuffered;
static Server *g_servers;
static const WCHAR WINDOW_CLASS[] = L"MxgLmxProxyStandIn";
#define WM_STANDIN_WORK (WM_APP + 1)
#define TIMER_BASE 0x1000

/* ---- trace ---- */

static HANDLE g_trace = INVALID_HANDLE_VALUE;
static LONG g_traceOpened;

void trace(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    int n;
    DWORD w;
    if (!g_traceOpened) {
        WCHAR dir[MAX_PATH], path[MAX_PATH + 64];
        g_traceOpened = 1;
        if (GetEnvironmentVariableW(L"MXG_STANDIN_TRACE_DIR", dir, MAX_PATH)) {
            swprintf(path, MAX_PATH + 64, L"%ls\\lmxproxy-%lu.log", dir, GetCurrentProcessId());
            g_trace = CreateFileW(path, FILE_APPEND_DATA, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                                  OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
        }
    }
    if (g_trace == INVALID_HANDLE_VALUE) return;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || n > (int)sizeof(line) - 2) n = sizeof(line) - 2;
    line[n++] = '\n';
    WriteFile(g_trace, line, n, &w, NULL);
}

/* ---- type library ---- */

static HRESULT load_typelib(void)
{
    ITypeInfo *ev;
    HREFTYPE href;
    ITypeInfo *rec = NULL;
    MEMBERID mid;
    USHORT found = 1;
    HRESULT hr;
    OLECHAR *name;

    if (g_tl) return S_OK;
    /* The registered library, as a real installation has it. */
    hr = LoadRegTypeLib(&LIBID_LMXPROXYLib, 1, 0, LOCALE_NEUTRAL, &g_tl);
    if (FAILED(hr)) {
        trace("LoadRegTypeLib: 0x%08lX", (unsigned long)hr);
        return hr;
    }
    if (FAILED(hr = ITypeLib_GetTypeInfoOfGuid(g_tl, &IID_ILMXProxyServer5, &g_dispTI))) return hr;
    /* A dual interface's type info is the dispinterface; DispInvoke needs
     * the vtable interface behind it. */
    if (FAILED(hr = ITypeInfo_GetRefTypeOfImplType(g_dispTI, -1, &href))) return hr;
    if (FAILED(hr = ITypeInfo_GetRefTypeInfo(g_dispTI, href, &g_itfTI))) return hr;

    if (FAILED(hr = ITypeLib_GetTypeInfoOfGuid(g_tl, &DIID__ILMXProxyServerEvents, &ev))) return hr;
    name = (OLECHAR *)L"OnDataChange";
    ITypeInfo_GetIDsOfNames(ev, &name, 1, &g_idDataChange);
    name = (OLECHAR *)L"OnWriteComplete";
    ITypeInfo_GetIDsOfNames(ev, &name, 1, &g_idWriteComplete);
    name = (OLECHAR *)L"OperationComplete";
    ITypeInfo_GetIDsOfNames(ev, &name, 1, &g_idOpComplete);
    ITypeInfo_Release(ev);
    if (FAILED(hr = ITypeLib_GetTypeInfoOfGuid(g_tl, &DIID__ILMXProxyServerEvents2, &ev))) return hr;
    name = (OLECHAR *)L"OnBufferedDataChange";
    ITypeInfo_GetIDsOfNames(ev, &name, 1, &g_idBuffered);
    ITypeInfo_Release(ev);

    name = SysAllocString(L"MXSTATUS_PROXY");
    hr = ITypeLib_FindName(g_tl, name, 0, &rec, &mid, &found);
    SysFreeString(name);
    if (FAILED(hr) || found != 1 || !rec) return FAILED(hr) ? hr : TYPE_E_ELEMENTNOTFOUND;
    hr = GetRecordInfoFromTypeInfo(rec, &g_recinfo);
    ITypeInfo_Release(rec);
    trace("typelib loaded: events OnDataChange=%ld OnWriteComplete=%ld OperationComplete=%ld OnBufferedDataChange=%ld",
          g_idDataChange, g_idWriteComplete, g_idOpComplete, g_idBuffered);
    return hr;
}

/* ---- events ---- */

static SAFEARRAY *status_array(const MXSTATUS_PROXY *st)
{
    SAFEARRAYBOUND b = {1, 0};
    SAFEARRAY *sa = SafeArrayCreateEx(VT_RECORD, 1, &b, g_recinfo);
    MXSTATUS_PROXY *p;
    if (sa && SUCCEEDED(SafeArrayAccessData(sa, (void **)&p))) {
        *p = *st;
        SafeArrayUnaccessData(sa);
    }
    return sa;
}

/* fire calls every sink of connection point cp with args in declaration
 * order (DISPPARAMS holds them reversed). The last argument is the status
 * array, passed VT_BYREF|VT_ARRAY|VT_RECORD as MXAccess passes it. */
static void fire(Server *s, int cp, DISPID id, const char *name, VARIANT *args, int n, const MXSTATUS_PROXY *st)
{
    VARIANT rg[8];
    DISPPARAMS dp;
    SAFEARRAY *sa = status_array(st);
    ConnPoint *c = &s->cps[cp];
    for (int i = 0; i < n; i++) rg[n - i] = args[i];
    VariantInit(&rg[0]);
    V_VT(&rg[0]) = VT_BYREF | VT_ARRAY | VT_RECORD;
    V_ARRAYREF(&rg[0]) = &sa;
    dp.rgvarg = rg;
    dp.cArgs = n + 1;
    dp.rgdispidNamedArgs = NULL;
    dp.cNamedArgs = 0;
    trace("event %s(%ld, %ld) status=(%d,%d,%d,%d)", name, V_I4(&args[0]), V_I4(&args[1]), st->success,
          st->category, st->detectedBy, st->detail);
    for (int i = 0; i < MAX_SINKS; i++) {
        IDispatch *d = c->sinks[i].disp;
        if (!d) continue;
        IDispatch_AddRef(d);
        IDispatch_Invoke(d, id, &IID_NULL, LOCALE_USER_DEFAULT, DISPATCH_METHOD, &dp, NULL, NULL, NULL);
        IDispatch_Release(d);
    }
    SafeArrayDestroy(sa);
}

static void i4(VARIANT *v, LONG x)
{
    VariantInit(v);
    V_VT(v) = VT_I4;
    V_I4(v) = x;
}

static void date(VARIANT *v, double x)
{
    VariantInit(v);
    V_VT(v) = VT_DATE;
    V_DATE(v) = x;
}

void fire_data_change(Item *it, const VARIANT *value, USHORT q, double ts, const MXSTATUS_PROXY *st)
{
    VARIANT a[5];
    i4(&a[0], it->reg->handle);
    i4(&a[1], it->handle);
    a[2] = *value; /* [in]: borrowed, the caller still owns it */
    i4(&a[3], q);
    date(&a[4], ts);
    fire(it->reg->srv, 0, g_idDataChange, "OnDataChange", a, 5, st);
}

void fire_write_complete(Item *it, const MXSTATUS_PROXY *st)
{
    VARIANT a[2];
    i4(&a[0], it->reg->handle);
    i4(&a[1], it->handle);
    fire(it->reg->srv, 0, g_idWriteComplete, "OnWriteComplete", a, 2, st);
}

void fire_operation_complete(Item *it, const MXSTATUS_PROXY *st)
{
    VARIANT a[2];
    i4(&a[0], it->reg->handle);
    i4(&a[1], it->handle);
    fire(it->reg->srv, 0, g_idOpComplete, "OperationComplete", a, 2, st);
}

void fire_buffered(Item *it, Sample *samples, int n, const MXSTATUS_PROXY *st)
{
    VARIANT a[5];
    SAFEARRAY *vals = SafeArrayCreateVector(VT_VARIANT, 0, n);
    SAFEARRAY *quals = SafeArrayCreateVector(VT_I4, 0, n);
    SAFEARRAY *times = SafeArrayCreateVector(VT_DATE, 0, n);
    for (LONG i = 0; i < n; i++) {
        LONG q = samples[i].quality;
        SafeArrayPutElement(vals, &i, &samples[i].value);
        SafeArrayPutElement(quals, &i, &q);
        SafeArrayPutElement(times, &i, &samples[i].ts);
    }
    i4(&a[0], it->reg->handle);
    i4(&a[1], it->handle);
    VariantInit(&a[2]);
    V_VT(&a[2]) = VT_ARRAY | VT_VARIANT;
    V_ARRAY(&a[2]) = vals;
    VariantInit(&a[3]);
    V_VT(&a[3]) = VT_ARRAY | VT_I4;
    V_ARRAY(&a[3]) = quals;
    VariantInit(&a[4]);
    V_VT(&a[4]) = VT_ARRAY | VT_DATE;
    V_ARRAY(&a[4]) = times;
    trace("  buffered samples=%d", n);
    fire(it->reg->srv, 1, g_idBuffered, "OnBufferedDataChange", a, 5, st);
    VariantClear(&a[2]);
    VariantClear(&a[3]);
    VariantClear(&a[4]);
}

void start_buffer_timer(Reg *reg)
{
    SetTimer(reg->srv->hwnd, TIMER_BASE + reg->handle, reg->bufIntervalMs, NULL);
}

void stop_buffer_timer(Reg *reg)
{
    KillTimer(reg->srv->hwnd, TIMER_BASE + reg->handle);
}

Server *server_list(void) { return g_servers; }

void spawn_child(LONG marker)
{
    WCHAR exe[MAX_PATH], cmd[MAX_PATH + 32], *slash;
    STARTUPINFOW si = {sizeof(si)};
    PROCESS_INFORMATION pi;
    GetModuleFileNameW(g_inst, exe, MAX_PATH);
    slash = wcsrchr(exe, L'\\');
    if (!slash) return;
    wcscpy(slash + 1, L"lmxchild.exe");
    swprintf(cmd, MAX_PATH + 32, L"\"%ls\" %ld", exe, (long)marker);
    if (CreateProcessW(exe, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi)) {
        trace("spawned lmxchild.exe pid=%lu marker=%ld", pi.dwProcessId, (long)marker);
        CloseHandle(pi.hThread);
        CloseHandle(pi.hProcess);
    } else {
        trace("spawn lmxchild.exe failed: %lu", GetLastError());
    }
}

void queue_action(Server *s, Action *a)
{
    if (s->qtail) s->qtail->next = a;
    else s->qhead = a;
    s->qtail = a;
    if (!s->posted) {
        s->posted = TRUE;
        PostMessageW(s->hwnd, WM_STANDIN_WORK, 0, 0);
    }
}

static void run_actions(Server *s)
{
    s->posted = FALSE;
    while (s->qhead) {
        Action *a = s->qhead;
        s->qhead = a->next;
        if (!s->qhead) s->qtail = NULL;
        sem_run(s, a);
        VariantClear(&a->value);
        free(a);
    }
}

static LRESULT CALLBACK wndproc(HWND hwnd, UINT msg, WPARAM wp, LPARAM lp)
{
    Server *s = (Server *)GetWindowLongPtrW(hwnd, GWLP_USERDATA);
    switch (msg) {
    case WM_STANDIN_WORK:
        if (s) {
            ILMXProxyServer5_AddRef(&s->ILMXProxyServer5_iface);
            run_actions(s);
            ILMXProxyServer5_Release(&s->ILMXProxyServer5_iface);
        }
        return 0;
    case WM_TIMER:
        KillTimer(hwnd, wp);
        if (s && wp > TIMER_BASE && (int)(wp - TIMER_BASE) < s->capRegs && s->regs[wp - TIMER_BASE]) {
            ILMXProxyServer5_AddRef(&s->ILMXProxyServer5_iface);
            sem_flush_buffered(s->regs[wp - TIMER_BASE]);
            ILMXProxyServer5_Release(&s->ILMXProxyServer5_iface);
        }
        return 0;
    }
    return DefWindowProcW(hwnd, msg, wp, lp);
}

/* ---- the object ---- */

static inline Server *impl_from_server(ILMXProxyServer5 *iface)
{
    return CONTAINING_RECORD(iface, Server, ILMXProxyServer5_iface);
}

static BOOL is_level_iid(REFIID riid)
{
    return IsEqualIID(riid, &IID_ILMXProxyServer) || IsEqualIID(riid, &IID_ILMXProxyServer2) ||
           IsEqualIID(riid, &IID_ILMXProxyServer3) || IsEqualIID(riid, &IID_ILMXProxyServer4) ||
           IsEqualIID(riid, &IID_ILMXProxyServer5);
}

static HRESULT STDMETHODCALLTYPE srv_QueryInterface(ILMXProxyServer5 *iface, REFIID riid, void **ppv)
{
    Server *s = impl_from_server(iface);
    if (!ppv) return E_POINTER;
    *ppv = NULL;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IDispatch) || is_level_iid(riid))
        *ppv = &s->ILMXProxyServer5_iface;
    else if (IsEqualIID(riid, &IID_IConnectionPointContainer))
        *ppv = &s->IConnectionPointContainer_iface;
    else if (IsEqualIID(riid, &IID_ISupportErrorInfo))
        *ppv = &s->ISupportErrorInfo_iface;
    if (!*ppv) return E_NOINTERFACE;
    IUnknown_AddRef((IUnknown *)*ppv);
    return S_OK;
}

static ULONG STDMETHODCALLTYPE srv_AddRef(ILMXProxyServer5 *iface)
{
    return InterlockedIncrement(&impl_from_server(iface)->refs);
}

static ULONG STDMETHODCALLTYPE srv_Release(ILMXProxyServer5 *iface)
{
    Server *s = impl_from_server(iface);
    ULONG n = InterlockedDecrement(&s->refs);
    if (n) return n;
    trace("object released (last reference)");
    for (int c = 0; c < 2; c++) {
        for (int i = 0; i < MAX_SINKS; i++) {
            if (s->cps[c].sinks[i].disp) IDispatch_Release(s->cps[c].sinks[i].disp);
        }
    }
    for (Server **p = &g_servers; *p; p = &(*p)->nextServer) {
        if (*p == s) {
            *p = s->nextServer;
            break;
        }
    }
    DestroyWindow(s->hwnd);
    while (s->qhead) {
        Action *a = s->qhead;
        s->qhead = a->next;
        VariantClear(&a->value);
        free(a);
    }
    sem_destroy(s);
    free(s);
    InterlockedDecrement(&g_objects);
    return 0;
}

static HRESULT STDMETHODCALLTYPE srv_GetTypeInfoCount(ILMXProxyServer5 *iface, UINT *n)
{
    *n = 1;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE srv_GetTypeInfo(ILMXProxyServer5 *iface, UINT i, LCID lcid, ITypeInfo **ti)
{
    if (i != 0) return DISP_E_BADINDEX;
    ITypeInfo_AddRef(g_dispTI);
    *ti = g_dispTI;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE srv_GetIDsOfNames(ILMXProxyServer5 *iface, REFIID riid, LPOLESTR *names, UINT n,
                                                   LCID lcid, DISPID *ids)
{
    return DispGetIDsOfNames(g_itfTI, names, n, ids);
}

static HRESULT STDMETHODCALLTYPE srv_Invoke(ILMXProxyServer5 *iface, DISPID id, REFIID riid, LCID lcid, WORD flags,
                                            DISPPARAMS *dp, VARIANT *res, EXCEPINFO *ei, UINT *argErr)
{
    return DispInvoke(iface, g_itfTI, id, flags, dp, res, ei, argErr);
}

#define SRV(iface) impl_from_server(iface)

static HRESULT STDMETHODCALLTYPE srv_Register(ILMXProxyServer5 *iface, BSTR name, LONG *h)
{
    HRESULT hr = sem_register(SRV(iface), name, h);
    trace("call Register(%ls) -> %ld", name ? name : L"", (long)*h);
    return hr;
}

static HRESULT STDMETHODCALLTYPE srv_Unregister(ILMXProxyServer5 *iface, LONG h)
{
    trace("call Unregister(%ld)", (long)h);
    return sem_unregister(SRV(iface), h);
}

static HRESULT STDMETHODCALLTYPE srv_AddItem(ILMXProxyServer5 *iface, LONG h, BSTR ref, LONG *hi)
{
    HRESULT hr = sem_add_item(SRV(iface), h, ref, FALSE, hi);
    trace("call AddItem(%ld, %ls) -> %ld", (long)h, ref ? ref : L"", SUCCEEDED(hr) ? (long)*hi : 0L);
    return hr;
}

static HRESULT STDMETHODCALLTYPE srv_RemoveItem(ILMXProxyServer5 *iface, LONG h, LONG hi)
{
    trace("call RemoveItem(%ld, %ld)", (long)h, (long)hi);
    return sem_remove_item(SRV(iface), h, hi);
}

static HRESULT STDMETHODCALLTYPE srv_Advise(ILMXProxyServer5 *iface, LONG h, LONG hi)
{
    trace("call Advise(%ld, %ld)", (long)h, (long)hi);
    return sem_advise(SRV(iface), h, hi, FALSE);
}

static HRESULT STDMETHODCALLTYPE srv_UnAdvise(ILMXProxyServer5 *iface, LONG h, LONG hi)
{
    trace("call UnAdvise(%ld, %ld)", (long)h, (long)hi);
    return sem_unadvise(SRV(iface), h, hi);
}

static HRESULT STDMETHODCALLTYPE srv_Write(ILMXProxyServer5 *iface, LONG h, LONG hi, VARIANT v, LONG user)
{
    trace("call Write(%ld, %ld, vt=0x%04X, user=%ld)", (long)h, (long)hi, V_VT(&v), (long)user);
    return sem_write(SRV(iface), "Write", h, hi, &v, NULL, FALSE, user, 0);
}

static HRESULT STDMETHODCALLTYPE srv_WriteSecured(ILMXProxyServer5 *iface, LONG h, LONG hi, LONG cur, LONG ver,
                                                  VARIANT v)
{
    trace("call WriteSecured(%ld, %ld, %ld, %ld, vt=0x%04X)", (long)h, (long)hi, (long)cur, (long)ver, V_VT(&v));
    return sem_write(SRV(iface), "WriteSecured", h, hi, &v, NULL, TRUE, cur, ver);
}

static HRESULT STDMETHODCALLTYPE srv_AuthenticateUser(ILMXProxyServer5 *iface, LONG h, BSTR user, BSTR pw, LONG *id)
{
    HRESULT hr = sem_authenticate(SRV(iface), h, user, pw, id);
    /* Never the password. */
    trace("call AuthenticateUser(%ld, %ls) -> %ld", (long)h, user ? user : L"", SUCCEEDED(hr) ? (long)*id : 0L);
    return hr;
}

static HRESULT STDMETHODCALLTYPE srv_ArchestrAUserToId(ILMXProxyServer5 *iface, LONG h, BSTR identity, LONG *id)
{
    HRESULT hr = sem_user_to_id(SRV(iface), h, identity, id);
    trace("call ArchestrAUserToId(%ld, %ls) -> %ld", (long)h, identity ? identity : L"", SUCCEEDED(hr) ? (long)*id : 0L);
    return hr;
}

static HRESULT STDMETHODCALLTYPE srv_AddItem2(ILMXProxyServer5 *iface, LONG h, BSTR ref, BSTR ctx, LONG *hi)
{
    HRESULT hr = sem_add_item(SRV(iface), h, ref, FALSE, hi);
    trace("call AddItem2(%ld, %ls, %ls) -> %ld", (long)h, ref ? ref : L"", ctx ? ctx : L"", SUCCEEDED(hr) ? (long)*hi : 0L);
    return hr;
}

static HRESULT STDMETHODCALLTYPE srv_Write2(ILMXProxyServer5 *iface, LONG h, LONG hi, VARIANT v, VARIANT ts, LONG user)
{
    trace("call Write2(%ld, %ld, vt=0x%04X, tsvt=0x%04X, user=%ld)", (long)h, (long)hi, V_VT(&v), V_VT(&ts), (long)user);
    return sem_write(SRV(iface), "Write2", h, hi, &v, &ts, FALSE, user, 0);
}

static HRESULT STDMETHODCALLTYPE srv_WriteSecured2(ILMXProxyServer5 *iface, LONG h, LONG hi, LONG cur, LONG ver,
                                                   VARIANT v, VARIANT ts)
{
    trace("call WriteSecured2(%ld, %ld, %ld, %ld, vt=0x%04X, tsvt=0x%04X)", (long)h, (long)hi, (long)cur, (long)ver,
          V_VT(&v), V_VT(&ts));
    return sem_write(SRV(iface), "WriteSecured2", h, hi, &v, &ts, TRUE, cur, ver);
}

static HRESULT STDMETHODCALLTYPE srv_Suspend(ILMXProxyServer5 *iface, LONG h, LONG hi)
{
    trace("call Suspend(%ld, %ld)", (long)h, (long)hi);
    return sem_suspend(SRV(iface), h, hi);
}

static HRESULT STDMETHODCALLTYPE srv_Activate(ILMXProxyServer5 *iface, LONG h, LONG hi)
{
    trace("call Activate(%ld, %ld)", (long)h, (long)hi);
    return sem_activate(SRV(iface), h, hi);
}

static HRESULT STDMETHODCALLTYPE srv_AdviseSupervisory(ILMXProxyServer5 *iface, LONG h, LONG hi)
{
    trace("call AdviseSupervisory(%ld, %ld)", (long)h, (long)hi);
    return sem_advise(SRV(iface), h, hi, TRUE);
}

static HRESULT STDMETHODCALLTYPE srv_AddBufferedItem(ILMXProxyServer5 *iface, LONG h, BSTR ref, LONG *hi)
{
    HRESULT hr = sem_add_item(SRV(iface), h, ref, TRUE, hi);
    trace("call AddBufferedItem(%ld, %ls) -> %ld", (long)h, ref ? ref : L"", SUCCEEDED(hr) ? (long)*hi : 0L);
    return hr;
}

static HRESULT STDMETHODCALLTYPE srv_SetBufferedUpdateInterval(ILMXProxyServer5 *iface, LONG h, LONG ms)
{
    trace("call SetBufferedUpdateInterval(%ld, %ld)", (long)h, (long)ms);
    return sem_set_buffered_interval(SRV(iface), h, ms);
}

static const ILMXProxyServer5Vtbl server_vtbl = {
    srv_QueryInterface, srv_AddRef, srv_Release,
    srv_GetTypeInfoCount, srv_GetTypeInfo, srv_GetIDsOfNames, srv_Invoke,
    srv_Register, srv_Unregister, srv_AddItem, srv_RemoveItem, srv_Advise, srv_UnAdvise, srv_Write,
    srv_WriteSecured, srv_AuthenticateUser,
    srv_ArchestrAUserToId,
    srv_AddItem2,
    srv_Write2, srv_WriteSecured2, srv_Suspend, srv_Activate, srv_AdviseSupervisory,
    srv_AddBufferedItem, srv_SetBufferedUpdateInterval,
};

/* ---- ISupportErrorInfo ---- */

static inline Server *impl_from_sei(ISupportErrorInfo *iface)
{
    return CONTAINING_RECORD(iface, Server, ISupportErrorInfo_iface);
}

static HRESULT STDMETHODCALLTYPE sei_QueryInterface(ISupportErrorInfo *iface, REFIID riid, void **ppv)
{
    return srv_QueryInterface(&impl_from_sei(iface)->ILMXProxyServer5_iface, riid, ppv);
}

static ULONG STDMETHODCALLTYPE sei_AddRef(ISupportErrorInfo *iface)
{
    return srv_AddRef(&impl_from_sei(iface)->ILMXProxyServer5_iface);
}

static ULONG STDMETHODCALLTYPE sei_Release(ISupportErrorInfo *iface)
{
    return srv_Release(&impl_from_sei(iface)->ILMXProxyServer5_iface);
}

static HRESULT STDMETHODCALLTYPE sei_InterfaceSupportsErrorInfo(ISupportErrorInfo *iface, REFIID riid)
{
    return is_level_iid(riid) ? S_OK : S_FALSE;
}

static const ISupportErrorInfoVtbl sei_vtbl = {
    sei_QueryInterface, sei_AddRef, sei_Release, sei_InterfaceSupportsErrorInfo,
};

/* ---- connection points ---- */

static inline ConnPoint *impl_from_cp(IConnectionPoint *iface)
{
    return CONTAINING_RECORD(iface, ConnPoint, IConnectionPoint_iface);
}

static HRESULT STDMETHODCALLTYPE cp_QueryInterface(IConnectionPoint *iface, REFIID riid, void **ppv)
{
    if (!ppv) return E_POINTER;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IConnectionPoint)) {
        *ppv = iface;
        IConnectionPoint_AddRef(iface);
        return S_OK;
    }
    *ppv = NULL;
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE cp_AddRef(IConnectionPoint *iface)
{
    return srv_AddRef(&impl_from_cp(iface)->srv->ILMXProxyServer5_iface);
}

static ULONG STDMETHODCALLTYPE cp_Release(IConnectionPoint *iface)
{
    return srv_Release(&impl_from_cp(iface)->srv->ILMXProxyServer5_iface);
}

static HRESULT STDMETHODCALLTYPE cp_GetConnectionInterface(IConnectionPoint *iface, IID *iid)
{
    *iid = *impl_from_cp(iface)->iid;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE cp_GetConnectionPointContainer(IConnectionPoint *iface, IConnectionPointContainer **c)
{
    *c = &impl_from_cp(iface)->srv->IConnectionPointContainer_iface;
    IConnectionPointContainer_AddRef(*c);
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE cp_Advise(IConnectionPoint *iface, IUnknown *unk, DWORD *cookie)
{
    ConnPoint *c = impl_from_cp(iface);
    IDispatch *d;
    if (!unk || !cookie) return E_POINTER;
    *cookie = 0;
    /* As ATL: the sink must answer the event interface's IID. */
    if (FAILED(IUnknown_QueryInterface(unk, c->iid, (void **)&d))) return CONNECT_E_CANNOTCONNECT;
    for (int i = 0; i < MAX_SINKS; i++) {
        if (!c->sinks[i].disp) {
            c->sinks[i].disp = d;
            c->sinks[i].cookie = *cookie = ++c->nextCookie;
            trace("connection point %s: Advise -> cookie %lu", c->name, *cookie);
            return S_OK;
        }
    }
    IDispatch_Release(d);
    return CONNECT_E_ADVISELIMIT;
}

static HRESULT STDMETHODCALLTYPE cp_Unadvise(IConnectionPoint *iface, DWORD cookie)
{
    ConnPoint *c = impl_from_cp(iface);
    for (int i = 0; i < MAX_SINKS; i++) {
        if (c->sinks[i].disp && c->sinks[i].cookie == cookie) {
            IDispatch *d = c->sinks[i].disp;
            c->sinks[i].disp = NULL;
            trace("connection point %s: Unadvise(%lu)", c->name, cookie);
            IDispatch_Release(d);
            return S_OK;
        }
    }
    return CONNECT_E_NOCONNECTION;
}

static HRESULT STDMETHODCALLTYPE cp_EnumConnections(IConnectionPoint *iface, IEnumConnections **e)
{
    *e = NULL;
    return E_NOTIMPL;
}

static const IConnectionPointVtbl cp_vtbl = {
    cp_QueryInterface, cp_AddRef, cp_Release, cp_GetConnectionInterface, cp_GetConnectionPointContainer,
    cp_Advise, cp_Unadvise, cp_EnumConnections,
};

/* IEnumConnectionPoints over the server's two connection points. */
typedef struct EnumCP {
    IEnumConnectionPoints IEnumConnectionPoints_iface;
    LONG refs;
    Server *srv;
    ULONG pos;
} EnumCP;

static const IEnumConnectionPointsVtbl enumcp_vtbl;

static inline EnumCP *impl_from_enum(IEnumConnectionPoints *iface)
{
    return CONTAINING_RECORD(iface, EnumCP, IEnumConnectionPoints_iface);
}

static HRESULT new_enum(Server *s, ULONG pos, IEnumConnectionPoints **out)
{
    EnumCP *e = calloc(1, sizeof(EnumCP));
    if (!e) return E_OUTOFMEMORY;
    e->IEnumConnectionPoints_iface.lpVtbl = (IEnumConnectionPointsVtbl *)&enumcp_vtbl;
    e->refs = 1;
    e->srv = s;
    e->pos = pos;
    srv_AddRef(&s->ILMXProxyServer5_iface);
    *out = &e->IEnumConnectionPoints_iface;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE enum_QueryInterface(IEnumConnectionPoints *iface, REFIID riid, void **ppv)
{
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IEnumConnectionPoints)) {
        *ppv = iface;
        IEnumConnectionPoints_AddRef(iface);
        return S_OK;
    }
    *ppv = NULL;
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE enum_AddRef(IEnumConnectionPoints *iface)
{
    return InterlockedIncrement(&impl_from_enum(iface)->refs);
}

static ULONG STDMETHODCALLTYPE enum_Release(IEnumConnectionPoints *iface)
{
    EnumCP *e = impl_from_enum(iface);
    ULONG n = InterlockedDecrement(&e->refs);
    if (!n) {
        srv_Release(&e->srv->ILMXProxyServer5_iface);
        free(e);
    }
    return n;
}

static HRESULT STDMETHODCALLTYPE enum_Next(IEnumConnectionPoints *iface, ULONG n, IConnectionPoint **out, ULONG *fetched)
{
    EnumCP *e = impl_from_enum(iface);
    ULONG got = 0;
    while (got < n && e->pos < 2) {
        out[got] = &e->srv->cps[e->pos++].IConnectionPoint_iface;
        IConnectionPoint_AddRef(out[got]);
        got++;
    }
    if (fetched) *fetched = got;
    return got == n ? S_OK : S_FALSE;
}

static HRESULT STDMETHODCALLTYPE enum_Skip(IEnumConnectionPoints *iface, ULONG n)
{
    EnumCP *e = impl_from_enum(iface);
    e->pos += n;
    return e->pos <= 2 ? S_OK : S_FALSE;
}

static HRESULT STDMETHODCALLTYPE enum_Reset(IEnumConnectionPoints *iface)
{
    impl_from_enum(iface)->pos = 0;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE enum_Clone(IEnumConnectionPoints *iface, IEnumConnectionPoints **out)
{
    EnumCP *e = impl_from_enum(iface);
    return new_enum(e->srv, e->pos, out);
}

static const IEnumConnectionPointsVtbl enumcp_vtbl = {
    enum_QueryInterface, enum_AddRef, enum_Release, enum_Next, enum_Skip, enum_Reset, enum_Clone,
};

static inline Server *impl_from_cpc(IConnectionPointContainer *iface)
{
    return CONTAINING_RECORD(iface, Server, IConnectionPointContainer_iface);
}

static HRESULT STDMETHODCALLTYPE cpc_QueryInterface(IConnectionPointContainer *iface, REFIID riid, void **ppv)
{
    return srv_QueryInterface(&impl_from_cpc(iface)->ILMXProxyServer5_iface, riid, ppv);
}

static ULONG STDMETHODCALLTYPE cpc_AddRef(IConnectionPointContainer *iface)
{
    return srv_AddRef(&impl_from_cpc(iface)->ILMXProxyServer5_iface);
}

static ULONG STDMETHODCALLTYPE cpc_Release(IConnectionPointContainer *iface)
{
    return srv_Release(&impl_from_cpc(iface)->ILMXProxyServer5_iface);
}

static HRESULT STDMETHODCALLTYPE cpc_EnumConnectionPoints(IConnectionPointContainer *iface, IEnumConnectionPoints **e)
{
    return new_enum(impl_from_cpc(iface), 0, e);
}

static HRESULT STDMETHODCALLTYPE cpc_FindConnectionPoint(IConnectionPointContainer *iface, REFIID riid,
                                                         IConnectionPoint **cp)
{
    Server *s = impl_from_cpc(iface);
    for (int i = 0; i < 2; i++) {
        if (IsEqualIID(riid, s->cps[i].iid)) {
            *cp = &s->cps[i].IConnectionPoint_iface;
            IConnectionPoint_AddRef(*cp);
            return S_OK;
        }
    }
    *cp = NULL;
    return CONNECT_E_NOCONNECTION;
}

static const IConnectionPointContainerVtbl cpc_vtbl = {
    cpc_QueryInterface, cpc_AddRef, cpc_Release, cpc_EnumConnectionPoints, cpc_FindConnectionPoint,
};

/* ---- creation ---- */

static BOOL register_window_class(void)
{
    static LONG done;
    WNDCLASSW wc = {0};
    if (done) return TRUE;
    wc.lpfnWndProc = wndproc;
    wc.hInstance = g_inst;
    wc.lpszClassName = WINDOW_CLASS;
    if (!RegisterClassW(&wc) && GetLastError() != ERROR_CLASS_ALREADY_EXISTS) return FALSE;
    done = 1;
    return TRUE;
}

static HRESULT create_server(REFIID riid, void **ppv)
{
    Server *s;
    HRESULT hr;
    *ppv = NULL;
    if (FAILED(hr = galaxy_load())) return hr;
    if (FAILED(hr = load_typelib())) return hr;
    if (!register_window_class()) return HRESULT_FROM_WIN32(GetLastError());
    s = calloc(1, sizeof(Server));
    if (!s) return E_OUTOFMEMORY;
    s->ILMXProxyServer5_iface.lpVtbl = (ILMXProxyServer5Vtbl *)&server_vtbl;
    s->IConnectionPointContainer_iface.lpVtbl = (IConnectionPointContainerVtbl *)&cpc_vtbl;
    s->ISupportErrorInfo_iface.lpVtbl = (ISupportErrorInfoVtbl *)&sei_vtbl;
    s->refs = 1;
    s->nextReg = 1;
    for (int i = 0; i < 2; i++) {
        s->cps[i].IConnectionPoint_iface.lpVtbl = (IConnectionPointVtbl *)&cp_vtbl;
        s->cps[i].srv = s;
    }
    s->cps[0].iid = &DIID__ILMXProxyServerEvents;
    s->cps[0].name = "_ILMXProxyServerEvents";
    s->cps[1].iid = &DIID__ILMXProxyServerEvents2;
    s->cps[1].name = "_ILMXProxyServerEvents2";
    /* The window lives on this (the creating, apartment) thread: its
     * messages are dispatched only when this thread pumps. */
    s->hwnd = CreateWindowExW(0, WINDOW_CLASS, NULL, 0, 0, 0, 0, 0, HWND_MESSAGE, NULL, g_inst, NULL);
    if (!s->hwnd) {
        hr = HRESULT_FROM_WIN32(GetLastError());
        free(s);
        return hr;
    }
    SetWindowLongPtrW(s->hwnd, GWLP_USERDATA, (LONG_PTR)s);
    s->nextServer = g_servers;
    g_servers = s;
    InterlockedIncrement(&g_objects);
    trace("object created on thread %lu", GetCurrentThreadId());
    hr = srv_QueryInterface(&s->ILMXProxyServer5_iface, riid, ppv);
    srv_Release(&s->ILMXProxyServer5_iface);
    return hr;
}

/* ---- class factory and DLL exports ---- */

static HRESULT STDMETHODCALLTYPE cf_QueryInterface(IClassFactory *iface, REFIID riid, void **ppv)
{
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IClassFactory)) {
        *ppv = iface;
        return S_OK;
    }
    *ppv = NULL;
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE cf_AddRef(IClassFactory *iface) { return 2; }
static ULONG STDMETHODCALLTYPE cf_Release(IClassFactory *iface) { return 1; }

static HRESULT STDMETHODCALLTYPE cf_CreateInstance(IClassFactory *iface, IUnknown *outer, REFIID riid, void **ppv)
{
    if (outer) {
        *ppv = NULL;
        return CLASS_E_NOAGGREGATION;
    }
    return create_server(riid, ppv);
}

static HRESULT STDMETHODCALLTYPE cf_LockServer(IClassFactory *iface, BOOL lock)
{
    if (lock) InterlockedIncrement(&g_locks);
    else InterlockedDecrement(&g_locks);
    return S_OK;
}

static const IClassFactoryVtbl cf_vtbl = {
    cf_QueryInterface, cf_AddRef, cf_Release, cf_CreateInstance, cf_LockServer,
};
static IClassFactory g_factory = {(IClassFactoryVtbl *)&cf_vtbl};

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    if (reason == DLL_PROCESS_ATTACH) {
        g_inst = inst;
        DisableThreadLibraryCalls(inst);
    }
    return TRUE;
}

HRESULT WINAPI DllGetClassObject(REFCLSID clsid, REFIID riid, void **ppv)
{
    if (!IsEqualCLSID(clsid, &CLSID_LMXProxyServer)) {
        *ppv = NULL;
        return CLASS_E_CLASSNOTAVAILABLE;
    }
    return cf_QueryInterface(&g_factory, riid, ppv);
}

HRESULT WINAPI DllCanUnloadNow(void)
{
    return g_objects == 0 && g_locks == 0 ? S_OK : S_FALSE;
}

static const WCHAR PROGID[] = L"LMXProxy.LMXProxyServer";
static const WCHAR PROGID1[] = L"LMXProxy.LMXProxyServer.1";

static LONG set_value(HKEY root, const WCHAR *sub, const WCHAR *name, const WCHAR *value)
{
    HKEY k;
    LONG r = RegCreateKeyExW(root, sub, 0, NULL, 0, KEY_WRITE, NULL, &k, NULL);
    if (r) return r;
    r = RegSetValueExW(k, name, 0, REG_SZ, (const BYTE *)value, (DWORD)(wcslen(value) + 1) * sizeof(WCHAR));
    RegCloseKey(k);
    return r;
}

/* DllRegisterServer writes what an ArchestrA installation registers:
 * both ProgIDs, the CLSID with InprocServer32 (ThreadingModel=Apartment;
 * from a 32-bit regsvr32 this lands in the 32-bit view, Wow6432Node) and
 * the type library MxAccess32.tlb next to the DLL. */
HRESULT WINAPI DllRegisterServer(void)
{
    WCHAR dll[MAX_PATH], tlb[MAX_PATH], clsid[64], libid[64], key[128], *slash;
    ITypeLib *tl;
    HRESULT hr;
    LONG r = 0;

    GetModuleFileNameW(g_inst, dll, MAX_PATH);
    StringFromGUID2(&CLSID_LMXProxyServer, clsid, 64);
    StringFromGUID2(&LIBID_LMXPROXYLib, libid, 64);
    swprintf(key, 128, L"CLSID\\%ls", clsid);
    r |= set_value(HKEY_CLASSES_ROOT, key, NULL, L"LMXProxyServer Class");
    swprintf(key, 128, L"CLSID\\%ls\\InprocServer32", clsid);
    r |= set_value(HKEY_CLASSES_ROOT, key, NULL, dll);
    r |= set_value(HKEY_CLASSES_ROOT, key, L"ThreadingModel", L"Apartment");
    swprintf(key, 128, L"CLSID\\%ls\\ProgID", clsid);
    r |= set_value(HKEY_CLASSES_ROOT, key, NULL, PROGID1);
    swprintf(key, 128, L"CLSID\\%ls\\VersionIndependentProgID", clsid);
    r |= set_value(HKEY_CLASSES_ROOT, key, NULL, PROGID);
    swprintf(key, 128, L"CLSID\\%ls\\TypeLib", clsid);
    r |= set_value(HKEY_CLASSES_ROOT, key, NULL, libid);
    r |= set_value(HKEY_CLASSES_ROOT, PROGID1, NULL, L"LMXProxyServer Class");
    swprintf(key, 128, L"%ls\\CLSID", PROGID1);
    r |= set_value(HKEY_CLASSES_ROOT, key, NULL, clsid);
    r |= set_value(HKEY_CLASSES_ROOT, PROGID, NULL, L"LMXProxyServer Class");
    swprintf(key, 128, L"%ls\\CLSID", PROGID);
    r |= set_value(HKEY_CLASSES_ROOT, key, NULL, clsid);
    swprintf(key, 128, L"%ls\\CurVer", PROGID);
    r |= set_value(HKEY_CLASSES_ROOT, key, NULL, PROGID1);
    if (r) return SELFREG_E_CLASS;

    wcscpy(tlb, dll);
    slash = wcsrchr(tlb, L'\\');
    if (!slash) return SELFREG_E_TYPELIB;
    wcscpy(slash + 1, L"MxAccess32.tlb");
    hr = LoadTypeLibEx(tlb, REGKIND_REGISTER, &tl);
    if (FAILED(hr)) return SELFREG_E_TYPELIB;
    ITypeLib_Release(tl);
    return S_OK;
}

HRESULT WINAPI DllUnregisterServer(void)
{
    WCHAR clsid[64], key[128];
    StringFromGUID2(&CLSID_LMXProxyServer, clsid, 64);
    swprintf(key, 128, L"CLSID\\%ls", clsid);
    RegDeleteTreeW(HKEY_CLASSES_ROOT, key);
    RegDeleteTreeW(HKEY_CLASSES_ROOT, PROGID);
    RegDeleteTreeW(HKEY_CLASSES_ROOT, PROGID1);
    UnRegisterTypeLib(&LIBID_LMXPROXYLib, 1, 0, LOCALE_NEUTRAL, SYS_WIN32);
    return S_OK;
}
