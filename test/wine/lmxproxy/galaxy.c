/*
 * Test stand-in for LMXProxy.LMXProxyServer: the Galaxy and the MXAccess
 * semantics.
 *
 * The Galaxy comes from the file named by the environment variable
 * MXG_STANDIN_GALAXY, which the Wine suite writes from the simulator model
 * test/wine/testdata/standin.yaml (one home for the Galaxy): UTF-8, one
 * record per line, fields separated by tabs, with \t, \n and \\ escaped:
 *
 *   galaxy  NAME
 *   user    NAME  PASSWORD  PERMS (comma-separated: operate,tune,configure,verify)
 *   attr    TAG.ATTR  TYPE  VT  SECURITY  DIM  QUALITY  VALUE...
 *
 * TYPE is the MxDataType code, VT the VARIANT type its values travel as
 * (the gateway's internal/backend.VariantTypeOf), SECURITY the
 * classification code, DIM 0 for a scalar or the array length (then DIM
 * values follow). Values by VT: VT_BOOL 0/1, VT_I4 in decimal, VT_R4 and
 * VT_R8 as C doubles, VT_BSTR as the text, VT_DATE as UTC Unix
 * milliseconds (turned into local wall-clock time, as MXAccess sends it).
 *
 * The behaviour mirrors the simulator with the "test" profile and the knobs
 * of standin.yaml (securityMode galaxy, emitOperationComplete): the same
 * handles, the same statuses, the same event order. Implemented: plain and
 * whole-array ([]) references, the 1003 failure of a bare array reference,
 * unresolved references, every method but the element, bit and property
 * forms of references (those resolve as unknown here). Sim.HangMs and
 * Sim.Crash behave as in the simulator; StandIn.SpawnChild starts
 * lmxchild.exe (a process for the Job Object to take).
 */
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>
#include <math.h>
#include "standin.h"

static Attr *g_attrs;
static int g_nattrs;
static User *g_users;
static int g_nusers;
static WCHAR *g_galaxy;
static LONG g_loaded;      /* 0 not yet, 1 loaded, -1 failed */
static LONG g_nextUserID = 1;
static unsigned long long g_subSeq;

static const MXSTATUS_PROXY ST_OK = {-1, MxCategoryOk, MxSourceRequestingLmx, 0};
static const MXSTATUS_PROXY ST_WRITE_OK = {-1, MxCategoryOk, MxSourceRespondingAutomationObject, 0};
static const MXSTATUS_PROXY ST_SECURITY = {0, MxCategorySecurityError, MxSourceRespondingAutomationObject, 0};
static const MXSTATUS_PROXY ST_UNRESOLVED = {0, MxCategoryConfigurationError, MxSourceRespondingLmx, 0};
static const MXSTATUS_PROXY ST_ARRAY_NO_INDEX = {0, MxCategoryCommunicationError, MxSourceRespondingLmx, 1003};

/* ---- time ---- */

/* OA date of a FILETIME (100 ns since 1601), keeping milliseconds. */
static double filetime_to_oadate(ULONGLONG ft)
{
    /* 1899-12-30 as a FILETIME. */
    const ULONGLONG epoch = 94353120000000000ULL;
    LONGLONG ms = ((LONGLONG)ft - (LONGLONG)epoch) / 10000;
    double days = (double)ms / 86400000.0;
    if (days < 0) {
        /* OA dates before the epoch keep a positive time of day. */
        double whole = floor(days);
        double frac = days - whole;
        days = whole - frac;
        if (frac == 0) days = whole;
    }
    return days;
}

static double utc_ms_to_local_oadate(LONGLONG ms)
{
    ULARGE_INTEGER u;
    FILETIME utc, local;
    u.QuadPart = (ULONGLONG)(ms * 10000 + 116444736000000000LL);
    utc.dwLowDateTime = u.LowPart;
    utc.dwHighDateTime = u.HighPart;
    FileTimeToLocalFileTime(&utc, &local);
    u.LowPart = local.dwLowDateTime;
    u.HighPart = local.dwHighDateTime;
    return filetime_to_oadate(u.QuadPart);
}

double now_oadate(void)
{
    FILETIME utc, local;
    ULARGE_INTEGER u;
    GetSystemTimeAsFileTime(&utc);
    FileTimeToLocalFileTime(&utc, &local);
    u.LowPart = local.dwLowDateTime;
    u.HighPart = local.dwHighDateTime;
    return filetime_to_oadate(u.QuadPart);
}

/* ---- loading ---- */

static WCHAR *unescape(const WCHAR *s)
{
    size_t n = wcslen(s);
    WCHAR *out = calloc(n + 1, sizeof(WCHAR)), *o = out;
    for (; *s; s++) {
        if (*s == L'\\' && s[1]) {
            s++;
            *o++ = *s == L't' ? L'\t' : *s == L'n' ? L'\n' : *s;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
    return out;
}

/* scalar_of parses one value of VARIANT type vt into v. */
static BOOL scalar_of(VARTYPE vt, const WCHAR *s, VARIANT *v)
{
    VariantInit(v);
    switch (vt) {
    case VT_BOOL:
        V_VT(v) = VT_BOOL;
        V_BOOL(v) = wcstol(s, NULL, 10) ? VARIANT_TRUE : VARIANT_FALSE;
        return TRUE;
    case VT_I4:
        V_VT(v) = VT_I4;
        V_I4(v) = wcstol(s, NULL, 10);
        return TRUE;
    case VT_R4:
        V_VT(v) = VT_R4;
        V_R4(v) = (float)wcstod(s, NULL);
        return TRUE;
    case VT_R8:
        V_VT(v) = VT_R8;
        V_R8(v) = wcstod(s, NULL);
        return TRUE;
    case VT_BSTR: {
        WCHAR *u = unescape(s);
        V_VT(v) = VT_BSTR;
        V_BSTR(v) = SysAllocString(u);
        free(u);
        return TRUE;
    }
    case VT_DATE:
        V_VT(v) = VT_DATE;
        V_DATE(v) = utc_ms_to_local_oadate(_wcstoi64(s, NULL, 10));
        return TRUE;
    }
    return FALSE;
}

/* put_element stores scalar e (of the array's element type) at index i. */
static HRESULT put_element(SAFEARRAY *sa, LONG i, VARIANT *e)
{
    switch (V_VT(e)) {
    case VT_BSTR: return SafeArrayPutElement(sa, &i, V_BSTR(e));
    case VT_BOOL: return SafeArrayPutElement(sa, &i, &V_BOOL(e));
    case VT_I4: return SafeArrayPutElement(sa, &i, &V_I4(e));
    case VT_R4: return SafeArrayPutElement(sa, &i, &V_R4(e));
    case VT_R8: return SafeArrayPutElement(sa, &i, &V_R8(e));
    case VT_DATE: return SafeArrayPutElement(sa, &i, &V_DATE(e));
    }
    return E_INVALIDARG;
}

/* get_element reads element i of a one-dimensional array as a VARIANT. */
static HRESULT get_element(SAFEARRAY *sa, VARTYPE vt, LONG i, VARIANT *e)
{
    VariantInit(e);
    if (vt == VT_VARIANT) return SafeArrayGetElement(sa, &i, e);
    V_VT(e) = vt;
    switch (vt) {
    case VT_BSTR: return SafeArrayGetElement(sa, &i, &V_BSTR(e));
    case VT_BOOL: return SafeArrayGetElement(sa, &i, &V_BOOL(e));
    case VT_I1: case VT_UI1: return SafeArrayGetElement(sa, &i, &V_UI1(e));
    case VT_I2: case VT_UI2: return SafeArrayGetElement(sa, &i, &V_I2(e));
    case VT_I4: case VT_UI4: case VT_INT: case VT_UINT: return SafeArrayGetElement(sa, &i, &V_I4(e));
    case VT_I8: case VT_UI8: return SafeArrayGetElement(sa, &i, &V_I8(e));
    case VT_R4: return SafeArrayGetElement(sa, &i, &V_R4(e));
    case VT_R8: return SafeArrayGetElement(sa, &i, &V_R8(e));
    case VT_DATE: return SafeArrayGetElement(sa, &i, &V_DATE(e));
    }
    V_VT(e) = VT_EMPTY;
    return E_INVALIDARG;
}

static int split(WCHAR *line, WCHAR **f, int max)
{
    int n = 0;
    f[n++] = line;
    for (WCHAR *p = line; *p && n < max; p++) {
        if (*p == L'\t') {
            *p = 0;
            f[n++] = p + 1;
        }
    }
    return n;
}

static int special_of(const WCHAR *ref)
{
    if (!_wcsicmp(ref, L"Sim.HangMs")) return SPECIAL_HANG_MS;
    if (!_wcsicmp(ref, L"Sim.Crash")) return SPECIAL_CRASH;
    if (!_wcsicmp(ref, L"StandIn.SpawnChild")) return SPECIAL_SPAWN_CHILD;
    return SPECIAL_NONE;
}

static BOOL parse_line(WCHAR *line)
{
    WCHAR *f[4096];
    int n = split(line, f, 4096);
    if (!wcscmp(f[0], L"galaxy") && n >= 2) {
        g_galaxy = unescape(f[1]);
        return TRUE;
    }
    if (!wcscmp(f[0], L"user") && n >= 4) {
        User *u;
        g_users = realloc(g_users, (g_nusers + 1) * sizeof(User));
        u = &g_users[g_nusers++];
        u->name = unescape(f[1]);
        u->password = unescape(f[2]);
        u->perms = 0;
        if (wcsstr(f[3], L"operate")) u->perms |= PERM_OPERATE;
        if (wcsstr(f[3], L"tune")) u->perms |= PERM_TUNE;
        if (wcsstr(f[3], L"configure")) u->perms |= PERM_CONFIGURE;
        if (wcsstr(f[3], L"verify")) u->perms |= PERM_VERIFY;
        return TRUE;
    }
    if (!wcscmp(f[0], L"attr") && n >= 7) {
        Attr *a;
        g_attrs = realloc(g_attrs, (g_nattrs + 1) * sizeof(Attr));
        a = &g_attrs[g_nattrs++];
        memset(a, 0, sizeof(*a));
        a->ref = unescape(f[1]);
        a->type = wcstol(f[2], NULL, 10);
        a->vt = (VARTYPE)wcstol(f[3], NULL, 10);
        a->security = wcstol(f[4], NULL, 10);
        a->dim = wcstol(f[5], NULL, 10);
        a->quality = (USHORT)wcstol(f[6], NULL, 10);
        a->special = special_of(a->ref);
        a->ts = now_oadate();
        VariantInit(&a->value);
        if (a->vt == VT_EMPTY) return TRUE;
        if (a->dim == 0) return n >= 8 && scalar_of(a->vt, f[7], &a->value);
        if (n < 7 + a->dim) return FALSE;
        SAFEARRAY *sa = SafeArrayCreateVector(a->vt, 0, a->dim);
        for (int i = 0; i < a->dim; i++) {
            VARIANT e;
            if (!scalar_of(a->vt, f[7 + i], &e)) return FALSE;
            put_element(sa, i, &e);
            VariantClear(&e);
        }
        V_VT(&a->value) = VT_ARRAY | a->vt;
        V_ARRAY(&a->value) = sa;
        return TRUE;
    }
    return n == 1 && f[0][0] == 0; /* an empty line */
}

HRESULT galaxy_load(void)
{
    WCHAR path[MAX_PATH];
    HANDLE h;
    DWORD size, got;
    char *buf;
    WCHAR *text;
    int wn;

    if (g_loaded) return g_loaded > 0 ? S_OK : E_FAIL;
    g_loaded = -1;
    if (!GetEnvironmentVariableW(L"MXG_STANDIN_GALAXY", path, MAX_PATH)) {
        trace("galaxy: MXG_STANDIN_GALAXY is not set");
        return E_FAIL;
    }
    h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        trace("galaxy: cannot open %ls: %lu", path, GetLastError());
        return E_FAIL;
    }
    size = GetFileSize(h, NULL);
    buf = malloc(size + 1);
    if (!ReadFile(h, buf, size, &got, NULL) || got != size) {
        CloseHandle(h);
        free(buf);
        return E_FAIL;
    }
    CloseHandle(h);
    buf[size] = 0;
    wn = MultiByteToWideChar(CP_UTF8, 0, buf, size + 1, NULL, 0);
    text = calloc(wn, sizeof(WCHAR));
    MultiByteToWideChar(CP_UTF8, 0, buf, size + 1, text, wn);
    free(buf);
    for (WCHAR *line = text, *next; line; line = next) {
        next = wcschr(line, L'\n');
        if (next) *next++ = 0;
        if (!parse_line(line)) {
            trace("galaxy: bad line in %ls", path);
            free(text);
            return E_FAIL;
        }
    }
    free(text);
    trace("galaxy: %ls with %d attributes and %d users", g_galaxy ? g_galaxy : L"?", g_nattrs, g_nusers);
    g_loaded = 1;
    return S_OK;
}

static Attr *find_attr(const WCHAR *ref, size_t n)
{
    for (int i = 0; i < g_nattrs; i++) {
        if (wcslen(g_attrs[i].ref) == n && !_wcsnicmp(g_attrs[i].ref, ref, n)) return &g_attrs[i];
    }
    return NULL;
}

Attr *galaxy_find(const WCHAR *ref, int *kind)
{
    const WCHAR *colon = wcschr(ref, L':');
    size_t n;
    Attr *a;

    *kind = K_UNRESOLVED;
    if (colon) {
        if (!g_galaxy || (size_t)(colon - ref) != wcslen(g_galaxy) || _wcsnicmp(ref, g_galaxy, colon - ref)) return NULL;
        ref = colon + 1;
    }
    n = wcslen(ref);
    if (n >= 2 && ref[n - 2] == L'[' && ref[n - 1] == L']') {
        a = find_attr(ref, n - 2);
        if (a && a->dim > 0) {
            *kind = K_VALUE;
            return a;
        }
        return NULL;
    }
    if (wcschr(ref, L'[')) return NULL;
    a = find_attr(ref, n);
    if (!a && !wcschr(ref, L'.')) {
        /* A bare tag name means its PV. */
        WCHAR buf[512];
        if (n + 4 < 512) {
            swprintf(buf, 512, L"%ls.PV", ref);
            a = find_attr(buf, wcslen(buf));
        }
    }
    if (!a || a->type == T_QSTRUCT) return NULL;
    *kind = a->dim > 0 ? K_ARRAY_NO_INDEX : K_VALUE;
    return a;
}

User *galaxy_user(const WCHAR *name)
{
    for (int i = 0; i < g_nusers; i++) {
        if (!_wcsicmp(g_users[i].name, name)) return &g_users[i];
    }
    return NULL;
}

/* ---- values ---- */

static BOOL is_int_vt(VARTYPE vt)
{
    switch (vt) {
    case VT_I1: case VT_UI1: case VT_I2: case VT_UI2: case VT_I4: case VT_UI4: case VT_INT: case VT_UINT:
    case VT_I8: case VT_UI8:
        return TRUE;
    }
    return FALSE;
}

static BOOL as_double(const VARIANT *v, double *d)
{
    VARIANT t;
    VariantInit(&t);
    if (FAILED(VariantChangeType(&t, (VARIANT *)v, 0, VT_R8))) return FALSE;
    *d = V_R8(&t);
    return TRUE;
}

static BOOL parse_double(BSTR s, double *d)
{
    WCHAR *end;
    while (*s == L' ' || *s == L'\t') s++;
    if (!*s) return FALSE;
    *d = wcstod(s, &end);
    while (*end == L' ' || *end == L'\t') end++;
    return *end == 0;
}

/* coerce_scalar implements the simulator's lenient writeCoercion for one
 * scalar of type t: the attribute's own type, lossless numeric conversions
 * and strings. */
static BOOL coerce_scalar(const VARIANT *in, VARTYPE target, VARIANT *out)
{
    VARTYPE vt = V_VT(in);
    double d;
    VariantInit(out);
    switch (target) {
    case VT_BOOL:
        V_VT(out) = VT_BOOL;
        if (vt == VT_BOOL) {
            V_BOOL(out) = V_BOOL(in) ? VARIANT_TRUE : VARIANT_FALSE;
            return TRUE;
        }
        if (is_int_vt(vt) && as_double(in, &d) && (d == 0 || d == 1)) {
            V_BOOL(out) = d == 1 ? VARIANT_TRUE : VARIANT_FALSE;
            return TRUE;
        }
        if (vt == VT_BSTR) {
            static const WCHAR *yes[] = {L"1", L"t", L"T", L"TRUE", L"true", L"True"};
            static const WCHAR *no[] = {L"0", L"f", L"F", L"FALSE", L"false", L"False"};
            for (int i = 0; i < 6; i++) {
                if (!wcscmp(V_BSTR(in), yes[i])) { V_BOOL(out) = VARIANT_TRUE; return TRUE; }
                if (!wcscmp(V_BSTR(in), no[i])) { V_BOOL(out) = VARIANT_FALSE; return TRUE; }
            }
        }
        break;
    case VT_I4:
        V_VT(out) = VT_I4;
        if (vt == VT_BSTR) {
            WCHAR *end;
            long long n = wcstoll(V_BSTR(in), &end, 10);
            if (end == V_BSTR(in) || *end || n < INT_MIN || n > INT_MAX) break;
            V_I4(out) = (LONG)n;
            return TRUE;
        }
        if ((is_int_vt(vt) || vt == VT_R4 || vt == VT_R8) && as_double(in, &d) && d == floor(d) &&
            d >= INT_MIN && d <= INT_MAX) {
            V_I4(out) = (LONG)d;
            return TRUE;
        }
        break;
    case VT_R4:
        V_VT(out) = VT_R4;
        if (vt == VT_R4) {
            V_R4(out) = V_R4(in);
            return TRUE;
        }
        if (vt == VT_R8 && ((double)(float)V_R8(in) == V_R8(in) || isnan(V_R8(in)))) {
            V_R4(out) = (float)V_R8(in);
            return TRUE;
        }
        if (is_int_vt(vt) && as_double(in, &d) && d >= -16777216.0 && d <= 16777216.0) {
            V_R4(out) = (float)d;
            return TRUE;
        }
        if (vt == VT_BSTR && parse_double(V_BSTR(in), &d)) {
            V_R4(out) = (float)d;
            return TRUE;
        }
        break;
    case VT_R8:
        V_VT(out) = VT_R8;
        if (vt == VT_R8 || vt == VT_R4 || is_int_vt(vt)) {
            if (!as_double(in, &d)) break;
            if ((vt == VT_I8 || vt == VT_UI8) && fabs(d) > 9007199254740992.0) break;
            V_R8(out) = d;
            return TRUE;
        }
        if (vt == VT_BSTR && parse_double(V_BSTR(in), &d)) {
            V_R8(out) = d;
            return TRUE;
        }
        break;
    case VT_BSTR:
        if (vt == VT_BSTR) return SUCCEEDED(VariantCopy(out, (VARIANT *)in));
        break;
    case VT_DATE:
        if (vt == VT_DATE) return SUCCEEDED(VariantCopy(out, (VARIANT *)in));
        break;
    }
    VariantInit(out);
    return FALSE;
}

BOOL coerce_value(const VARIANT *inRaw, const Attr *a, VARIANT *out)
{
    VARIANT in;
    BOOL ok = FALSE;
    VariantInit(&in);
    VariantInit(out);
    if (FAILED(VariantCopyInd(&in, (VARIANT *)inRaw))) return FALSE;
    if (V_VT(&in) == VT_EMPTY || V_VT(&in) == VT_NULL || a->vt == VT_EMPTY) goto done;
    if (a->dim == 0) {
        if (!(V_VT(&in) & VT_ARRAY)) ok = coerce_scalar(&in, a->vt, out);
        goto done;
    }
    if (V_VT(&in) & VT_ARRAY) {
        SAFEARRAY *src = V_ARRAY(&in), *dst;
        VARTYPE evt = V_VT(&in) & VT_TYPEMASK;
        LONG lo, hi;
        if (!src || SafeArrayGetDim(src) != 1) goto done;
        SafeArrayGetLBound(src, 1, &lo);
        SafeArrayGetUBound(src, 1, &hi);
        if (hi - lo + 1 != a->dim) goto done;
        dst = SafeArrayCreateVector(a->vt, 0, a->dim);
        for (LONG i = 0; i < a->dim; i++) {
            VARIANT e, c;
            if (FAILED(get_element(src, evt, lo + i, &e)) || !coerce_scalar(&e, a->vt, &c)) {
                VariantClear(&e);
                SafeArrayDestroy(dst);
                goto done;
            }
            put_element(dst, i, &c);
            VariantClear(&e);
            VariantClear(&c);
        }
        V_VT(out) = VT_ARRAY | a->vt;
        V_ARRAY(out) = dst;
        ok = TRUE;
    }
done:
    VariantClear(&in);
    return ok;
}

BOOL var_equal(const VARIANT *a, const VARIANT *b)
{
    if (V_VT(a) != V_VT(b)) return FALSE;
    if (V_VT(a) & VT_ARRAY) {
        SAFEARRAY *x = V_ARRAY(a), *y = V_ARRAY(b);
        LONG xl, xh, yl, yh;
        VARTYPE evt = V_VT(a) & VT_TYPEMASK;
        SafeArrayGetLBound(x, 1, &xl);
        SafeArrayGetUBound(x, 1, &xh);
        SafeArrayGetLBound(y, 1, &yl);
        SafeArrayGetUBound(y, 1, &yh);
        if (xh - xl != yh - yl) return FALSE;
        for (LONG i = 0; i <= xh - xl; i++) {
            VARIANT ex, ey;
            BOOL eq;
            get_element(x, evt, xl + i, &ex);
            get_element(y, evt, yl + i, &ey);
            eq = var_equal(&ex, &ey);
            VariantClear(&ex);
            VariantClear(&ey);
            if (!eq) return FALSE;
        }
        return TRUE;
    }
    switch (V_VT(a)) {
    case VT_EMPTY: case VT_NULL: return TRUE;
    case VT_BOOL: return V_BOOL(a) == V_BOOL(b);
    case VT_I4: return V_I4(a) == V_I4(b);
    case VT_R4: return V_R4(a) == V_R4(b) || (isnan(V_R4(a)) && isnan(V_R4(b)));
    case VT_R8: case VT_DATE: return V_R8(a) == V_R8(b) || (isnan(V_R8(a)) && isnan(V_R8(b)));
    case VT_BSTR: return !wcscmp(V_BSTR(a) ? V_BSTR(a) : L"", V_BSTR(b) ? V_BSTR(b) : L"");
    }
    return FALSE;
}

/* ---- handles ---- */

static HRESULT failf(HRESULT hr, const WCHAR *fmt, ...)
{
    WCHAR msg[256];
    ICreateErrorInfo *cei;
    va_list ap;
    va_start(ap, fmt);
    vswprintf(msg, 256, fmt, ap);
    va_end(ap);
    trace("  -> 0x%08lX %ls", (unsigned long)hr, msg);
    if (SUCCEEDED(CreateErrorInfo(&cei))) {
        IErrorInfo *ei;
        ICreateErrorInfo_SetDescription(cei, msg);
        ICreateErrorInfo_SetSource(cei, (LPOLESTR)L"LMXProxy.LMXProxyServer");
        ICreateErrorInfo_SetGUID(cei, &IID_ILMXProxyServer5);
        if (SUCCEEDED(ICreateErrorInfo_QueryInterface(cei, &IID_IErrorInfo, (void **)&ei))) {
            SetErrorInfo(0, ei);
            IErrorInfo_Release(ei);
        }
        ICreateErrorInfo_Release(cei);
    }
    return hr;
}

static Reg *lookup_reg(Server *s, LONG h)
{
    if (h <= 0 || h >= s->capRegs) return NULL;
    return s->regs[h];
}

static HRESULT lookup_item(Server *s, LONG h, LONG hi, Reg **reg, Item **it)
{
    *reg = lookup_reg(s, h);
    if (!*reg) return failf(E_INVALIDARG, L"unknown server handle %ld", (long)h);
    if (hi <= 0 || hi >= (*reg)->capSlots || !(*reg)->slots[hi])
        return failf(E_INVALIDARG, L"unknown item handle %ld in server handle %ld", (long)hi, (long)h);
    *it = (*reg)->slots[hi];
    return S_OK;
}

static Action *new_action(int kind, Item *it)
{
    Action *a = calloc(1, sizeof(Action));
    a->kind = kind;
    a->it = it;
    a->gen = it ? it->gen : 0;
    VariantInit(&a->value);
    return a;
}

HRESULT sem_register(Server *s, BSTR name, LONG *h)
{
    Reg *r;
    (void)name;
    if (s->nextReg >= s->capRegs) {
        int cap = s->capRegs ? s->capRegs * 2 : 8;
        s->regs = realloc(s->regs, cap * sizeof(Reg *));
        memset(s->regs + s->capRegs, 0, (cap - s->capRegs) * sizeof(Reg *));
        s->capRegs = cap;
    }
    r = calloc(1, sizeof(Reg));
    r->srv = s;
    r->handle = s->nextReg++;
    r->bufIntervalMs = 1000;
    s->regs[r->handle] = r;
    *h = r->handle;
    return S_OK;
}

static void unsubscribe(Item *it)
{
    if (!it->advised) return;
    it->advised = it->delivered = it->suspended = FALSE;
    it->gen++;
    it->hasLast = FALSE;
    VariantClear(&it->lastVal);
    for (int i = 0; i < it->nsamples; i++) VariantClear(&it->samples[i].value);
    it->nsamples = 0;
}

static void detach(Item *it)
{
    unsubscribe(it);
    it->alive = FALSE;
    it->reg->slots[it->handle] = NULL;
}

HRESULT sem_unregister(Server *s, LONG h)
{
    Reg *r = lookup_reg(s, h);
    if (!r) return failf(E_INVALIDARG, L"unknown server handle %ld", (long)h);
    for (int i = 1; i < r->capSlots; i++) {
        if (r->slots[i]) detach(r->slots[i]);
    }
    stop_buffer_timer(r);
    r->bufGen++;
    s->regs[h] = NULL;
    /* Pending actions may still point at its (now dead) items, which point
     * at it: it is freed with the server. */
    r->nextDead = s->deadRegs;
    s->deadRegs = r;
    return S_OK;
}

static int alloc_handle(Reg *r)
{
    int h;
    for (h = 1; h <= r->nextHandle && h < r->capSlots; h++) {
        if (!r->slots[h]) return h; /* the lowest freed handle first */
    }
    h = ++r->nextHandle;
    if (h >= r->capSlots) {
        int cap = r->capSlots ? r->capSlots * 2 : 16;
        while (cap <= h) cap *= 2;
        r->slots = realloc(r->slots, cap * sizeof(Item *));
        memset(r->slots + r->capSlots, 0, (cap - r->capSlots) * sizeof(Item *));
        r->capSlots = cap;
    }
    return h;
}

HRESULT sem_add_item(Server *s, LONG h, BSTR ref, BOOL buffered, LONG *hi)
{
    Reg *r = lookup_reg(s, h);
    Item *it;
    if (!r) return failf(E_INVALIDARG, L"unknown server handle %ld", (long)h);
    it = calloc(1, sizeof(Item));
    it->reg = r;
    it->alive = TRUE;
    it->buffered = buffered;
    it->attr = galaxy_find(ref ? ref : L"", &it->kind);
    VariantInit(&it->lastVal);
    it->handle = alloc_handle(r);
    r->slots[it->handle] = it;
    it->nextAll = s->allItems;
    s->allItems = it;
    *hi = it->handle;
    return S_OK;
}

HRESULT sem_remove_item(Server *s, LONG h, LONG hi)
{
    Reg *r;
    Item *it;
    HRESULT hr = lookup_item(s, h, hi, &r, &it);
    if (FAILED(hr)) return hr;
    detach(it);
    return S_OK;
}

HRESULT sem_advise(Server *s, LONG h, LONG hi, BOOL supervisory)
{
    Reg *r;
    Item *it;
    HRESULT hr = lookup_item(s, h, hi, &r, &it);
    if (FAILED(hr)) return hr;
    if (it->advised) return S_OK; /* a second advise: no second initial value */
    it->advised = TRUE;
    it->supervisory = supervisory;
    it->gen++;
    it->subSeq = ++g_subSeq;
    queue_action(s, new_action(A_BIND, it));
    return S_OK;
}

HRESULT sem_unadvise(Server *s, LONG h, LONG hi)
{
    Reg *r;
    Item *it;
    HRESULT hr = lookup_item(s, h, hi, &r, &it);
    if (FAILED(hr)) return hr;
    unsubscribe(it);
    return S_OK;
}

HRESULT sem_suspend(Server *s, LONG h, LONG hi)
{
    Reg *r;
    Item *it;
    HRESULT hr = lookup_item(s, h, hi, &r, &it);
    if (FAILED(hr)) return hr;
    it->suspended = TRUE;
    queue_action(s, new_action(A_OPCOMPLETE, it));
    return S_OK;
}

HRESULT sem_activate(Server *s, LONG h, LONG hi)
{
    Reg *r;
    Item *it;
    HRESULT hr = lookup_item(s, h, hi, &r, &it);
    if (FAILED(hr)) return hr;
    if (it->suspended) {
        it->suspended = FALSE;
        queue_action(s, new_action(A_DELIVER, it));
    }
    queue_action(s, new_action(A_OPCOMPLETE, it));
    return S_OK;
}

static User *reg_user(Reg *r, LONG id)
{
    for (int i = 0; i < r->nusers; i++) {
        if (r->users[i].id == id) return r->users[i].user;
    }
    return NULL;
}

static LONG new_user_id(Reg *r, User *u)
{
    if (r->nusers == r->capUsers) {
        r->capUsers = r->capUsers ? r->capUsers * 2 : 4;
        r->users = realloc(r->users, r->capUsers * sizeof(RegUser));
    }
    r->users[r->nusers].id = g_nextUserID++;
    r->users[r->nusers].user = u;
    return r->users[r->nusers++].id;
}

HRESULT sem_authenticate(Server *s, LONG h, BSTR user, BSTR password, LONG *id)
{
    Reg *r = lookup_reg(s, h);
    User *u;
    if (!r) return failf(E_INVALIDARG, L"unknown server handle %ld", (long)h);
    *id = 0;
    u = galaxy_user(user ? user : L"");
    if (u && !wcscmp(u->password, password ? password : L"")) *id = new_user_id(r, u);
    return S_OK; /* Galaxy security: bad credentials are id 0 with S_OK */
}

HRESULT sem_user_to_id(Server *s, LONG h, BSTR identity, LONG *id)
{
    Reg *r = lookup_reg(s, h);
    const WCHAR *name = identity ? identity : L"", *bs;
    User *u;
    if (!r) return failf(E_INVALIDARG, L"unknown server handle %ld", (long)h);
    *id = 0;
    if ((bs = wcsrchr(name, L'\\'))) name = bs + 1;
    if ((u = galaxy_user(name))) *id = new_user_id(r, u);
    return S_OK;
}

HRESULT sem_set_buffered_interval(Server *s, LONG h, LONG ms)
{
    Reg *r = lookup_reg(s, h);
    if (!r) return failf(E_INVALIDARG, L"unknown server handle %ld", (long)h);
    if (ms <= 0) return failf(E_INVALIDARG, L"interval must be positive");
    r->bufIntervalMs = ms;
    r->bufGen++;
    if (r->bufRunning) {
        /* Restart the cycle with the new interval. */
        stop_buffer_timer(r);
        start_buffer_timer(r);
    }
    return S_OK;
}

/* check_security mirrors the simulator's securityMode "galaxy". */
BOOL check_security(Reg *reg, Item *it, BOOL secured, LONG user, LONG verifier)
{
    int sec = it->attr->security;
    User *u = reg_user(reg, user), *v = secured ? reg_user(reg, verifier) : NULL;
    unsigned need = 0;
    if (sec == SEC_VIEWONLY) return FALSE;
    if (sec == SEC_FREE) return TRUE;
    switch (sec) {
    case SEC_OPERATE: case SEC_SECURED: case SEC_VERIFIED: need = PERM_OPERATE; break;
    case SEC_TUNE: need = PERM_TUNE; break;
    case SEC_CONFIGURE: need = PERM_CONFIGURE; break;
    }
    if (!secured) {
        if (sec == SEC_SECURED || sec == SEC_VERIFIED) return FALSE;
        if (user == 0) return it->supervisory; /* a supervisory connection writes as the client */
        return u && (u->perms & need);
    }
    if (!u || !(u->perms & need)) return FALSE;
    if (sec == SEC_VERIFIED) {
        if (!v || verifier == user || v == u || !(v->perms & PERM_VERIFY)) return FALSE;
    }
    return TRUE;
}

HRESULT sem_write(Server *s, const char *method, LONG h, LONG hi, const VARIANT *v, const VARIANT *ts,
                  BOOL secured, LONG user, LONG verifier)
{
    Reg *r;
    Item *it;
    Action *a;
    VARIANT val;
    HRESULT hr = lookup_item(s, h, hi, &r, &it);
    (void)method;
    if (FAILED(hr)) return hr;
    if (!it->advised) return failf(E_INVALIDARG, L"item not advised");
    if (it->kind != K_VALUE || !coerce_value(v, it->attr, &val))
        return failf(E_INVALIDARG, L"value type not acceptable for this item");
    a = new_action(A_APPLY_WRITE, it);
    a->value = val;
    a->allowed = check_security(r, it, secured, user, verifier);
    if (ts) {
        VARIANT t;
        VariantInit(&t);
        if (FAILED(VariantChangeType(&t, (VARIANT *)ts, 0, VT_DATE))) {
            VariantClear(&a->value);
            free(a);
            return failf(E_INVALIDARG, L"timestamp is not a date");
        }
        a->hasTs = TRUE;
        a->ts = V_DATE(&t);
    }
    queue_action(s, a);
    return S_OK;
}

/* ---- asynchronous part, on the STA from window messages ---- */

static void view(Item *it, VARIANT *val, USHORT *q, double *ts, const MXSTATUS_PROXY **st)
{
    VariantInit(val);
    switch (it->kind) {
    case K_UNRESOLVED:
        *q = 0;
        *ts = now_oadate();
        *st = &ST_UNRESOLVED;
        return;
    case K_ARRAY_NO_INDEX:
        *q = 0;
        *ts = now_oadate();
        *st = &ST_ARRAY_NO_INDEX;
        return;
    }
    VariantCopy(val, &it->attr->value);
    *q = it->attr->quality;
    *ts = it->attr->ts;
    *st = &ST_OK;
}

static void send_view(Item *it, VARIANT *val, USHORT q, double ts, const MXSTATUS_PROXY *st)
{
    it->hasLast = TRUE;
    VariantClear(&it->lastVal);
    VariantCopy(&it->lastVal, val);
    it->lastQ = q;
    if (it->buffered) {
        Sample *sm;
        if (it->nsamples == it->capSamples) {
            it->capSamples = it->capSamples ? it->capSamples * 2 : 8;
            it->samples = realloc(it->samples, it->capSamples * sizeof(Sample));
        }
        sm = &it->samples[it->nsamples++];
        VariantInit(&sm->value);
        VariantCopy(&sm->value, val);
        sm->quality = q;
        sm->ts = ts;
        return;
    }
    fire_data_change(it, val, q, ts, st);
}

static void deliver(Item *it)
{
    VARIANT val;
    USHORT q;
    double ts;
    const MXSTATUS_PROXY *st;
    if (!it->alive || !it->advised || !it->delivered || it->suspended) return;
    view(it, &val, &q, &ts, &st);
    if (!it->hasLast || q != it->lastQ || !var_equal(&val, &it->lastVal)) send_view(it, &val, q, ts, st);
    VariantClear(&val);
}

static int by_sub_seq(const void *a, const void *b)
{
    const Item *x = *(Item *const *)a, *y = *(Item *const *)b;
    return x->subSeq < y->subSeq ? -1 : x->subSeq > y->subSeq;
}

/* set_attr changes an attribute and notifies every advised item that reads
 * it, in advise order, across every object of the process. */
static void set_attr(Attr *a, const VARIANT *val, double ts, BOOL forceTs)
{
    Item **subs = NULL;
    int n = 0, cap = 0;
    BOOL changed = !var_equal(val, &a->value);
    if (!changed && !(forceTs && ts != a->ts)) return;
    VariantClear(&a->value);
    VariantCopy(&a->value, (VARIANT *)val);
    a->ts = ts;
    for (Server *s = server_list(); s; s = s->nextServer) {
        for (Item *it = s->allItems; it; it = it->nextAll) {
            if (it->alive && it->advised && it->attr == a && it->kind == K_VALUE) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 8;
                    subs = realloc(subs, cap * sizeof(Item *));
                }
                subs[n++] = it;
            }
        }
    }
    qsort(subs, n, sizeof(Item *), by_sub_seq);
    for (int i = 0; i < n; i++) deliver(subs[i]);
    free(subs);
}

/* ensure_flush starts the registration's buffered flush cycle. */
static void ensure_flush(Reg *reg)
{
    if (reg->bufRunning) return;
    reg->bufRunning = TRUE;
    start_buffer_timer(reg);
}

static double truncate_ms(double oa)
{
    double ms = floor(oa * 86400000.0 + 0.5);
    return ms / 86400000.0;
}

void sem_run(Server *s, Action *a)
{
    Item *it = a->it;
    (void)s;
    switch (a->kind) {
    case A_BIND: {
        VARIANT val;
        USHORT q;
        double ts;
        const MXSTATUS_PROXY *st;
        if (!it->alive || !it->advised || it->gen != a->gen || it->delivered) break;
        it->delivered = TRUE;
        if (it->suspended) break; /* Activate sends it */
        view(it, &val, &q, &ts, &st);
        send_view(it, &val, q, ts, st);
        VariantClear(&val);
        if (it->buffered) ensure_flush(it->reg);
        break;
    }
    case A_DELIVER:
        if (it->gen == a->gen) deliver(it);
        break;
    case A_OPCOMPLETE:
        if (it->alive) fire_operation_complete(it, &ST_OK);
        break;
    case A_APPLY_WRITE: {
        Attr *attr = it->attr;
        if (!a->allowed) {
            if (it->alive) fire_write_complete(it, &ST_SECURITY);
            break;
        }
        if (attr->special == SPECIAL_CRASH) {
            trace("Sim.Crash: ExitProcess(%ld)", (long)V_I4(&a->value));
            ExitProcess((UINT)V_I4(&a->value));
        }
        if (it->alive) fire_write_complete(it, &ST_WRITE_OK);
        set_attr(attr, &a->value, a->hasTs ? truncate_ms(a->ts) : truncate_ms(now_oadate()), a->hasTs);
        if (attr->special == SPECIAL_HANG_MS && V_I4(&a->value) > 0) {
            trace("Sim.HangMs: the STA sleeps %ld ms without pumping", (long)V_I4(&a->value));
            Sleep((DWORD)V_I4(&a->value));
        }
        if (attr->special == SPECIAL_SPAWN_CHILD && V_I4(&a->value) != 0) spawn_child(V_I4(&a->value));
        break;
    }
    }
}

void sem_flush_buffered(Reg *reg)
{
    BOOL live = FALSE;
    reg->bufRunning = FALSE;
    for (int h = 1; h < reg->capSlots; h++) {
        Item *it = reg->slots[h];
        if (!it || !it->buffered || !it->advised) continue;
        live = TRUE;
        if (it->nsamples == 0) continue;
        fire_buffered(it, it->samples, it->nsamples, &ST_OK);
        for (int i = 0; i < it->nsamples; i++) VariantClear(&it->samples[i].value);
        it->nsamples = 0;
    }
    if (live) {
        reg->bufRunning = TRUE;
        start_buffer_timer(reg);
    }
}

void sem_destroy(Server *s)
{
    for (int h = 1; h < s->capRegs; h++) {
        if (s->regs[h]) sem_unregister(s, h);
    }
    free(s->regs);
    while (s->deadRegs) {
        Reg *r = s->deadRegs;
        s->deadRegs = r->nextDead;
        free(r->slots);
        free(r->users);
        free(r);
    }
    while (s->allItems) {
        Item *it = s->allItems;
        s->allItems = it->nextAll;
        VariantClear(&it->lastVal);
        for (int i = 0; i < it->nsamples; i++) VariantClear(&it->samples[i].value);
        free(it->samples);
        free(it);
    }
}
