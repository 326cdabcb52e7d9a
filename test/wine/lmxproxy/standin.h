/*
 * Test stand-in for LMXProxy.LMXProxyServer: shared declarations.
 *
 * Test-only (see test/wine/doc.go). The server (server.c) is the COM
 * plumbing: class factory, the dual ILMXProxyServer5 object, connection
 * points and the hidden window whose messages deliver every event on the
 * creating (STA) thread. galaxy.c holds the Galaxy (attributes and users,
 * loaded from the file named by MXG_STANDIN_GALAXY) and the MXAccess
 * semantics, which mirror the simulator's (internal/backend/sim) for the
 * operations the stand-in implements.
 */
#ifndef STANDIN_H
#define STANDIN_H

#define COBJMACROS
#include <windows.h>
#include <ole2.h>
#include <olectl.h>
#include "lmxproxy.h"

/* MxDataType codes (api/mxgateway/v1/values.proto, MXACCESS.md §5.3). */
enum {
    T_NODATA = 0, T_BOOL = 1, T_INT = 2, T_FLOAT = 3, T_DOUBLE = 4, T_STRING = 5,
    T_TIME = 6, T_ELAPSED = 7, T_REF = 8, T_STATUS = 9, T_DTENUM = 10, T_SECENUM = 11,
    T_QUALENUM = 12, T_QENUM = 13, T_QSTRUCT = 14, T_ISTRING = 15, T_BIGSTRING = 16
};

/* Security classifications (MXACCESS.md §5.6). */
enum { SEC_FREE = 0, SEC_OPERATE, SEC_SECURED, SEC_VERIFIED, SEC_TUNE, SEC_CONFIGURE, SEC_VIEWONLY };

/* User permissions (bits). */
enum { PERM_OPERATE = 1, PERM_TUNE = 2, PERM_CONFIGURE = 4, PERM_VERIFY = 8 };

/* Attributes with behaviour of their own (the simulator's Sim object, and
 * one of the stand-in's). */
enum { SPECIAL_NONE = 0, SPECIAL_HANG_MS, SPECIAL_CRASH, SPECIAL_SPAWN_CHILD };

typedef struct Attr {
    WCHAR *ref;     /* Tag.Attribute */
    int type;       /* T_* */
    int security;   /* SEC_* */
    int dim;        /* 0 scalar, else the array length */
    VARTYPE vt;     /* element VARIANT type */
    int special;    /* SPECIAL_* */
    VARIANT value;  /* VT_ARRAY|vt for arrays */
    USHORT quality;
    double ts;      /* VT_DATE, local wall-clock time */
} Attr;

typedef struct User {
    WCHAR *name, *password;
    unsigned perms;
} User;

/* Item kinds, as the simulator resolves them. */
enum { K_UNRESOLVED = 0, K_ARRAY_NO_INDEX, K_VALUE };

typedef struct Sample {
    VARIANT value;
    USHORT quality;
    double ts;
} Sample;

struct Server;
struct Reg;

typedef struct Item {
    struct Reg *reg;
    int handle;
    BOOL alive;
    int kind;
    Attr *attr;
    BOOL buffered, advised, supervisory, suspended, delivered, hasLast;
    unsigned gen;
    unsigned long long subSeq; /* advise order, for notification order */
    VARIANT lastVal;
    USHORT lastQ;
    Sample *samples;
    int nsamples, capSamples;
    struct Item *nextAll; /* every item of the server, freed with it */
} Item;

typedef struct RegUser {
    LONG id;
    User *user;
} RegUser;

typedef struct Reg {
    struct Server *srv;
    LONG handle;
    Item **slots; /* index = item handle */
    int capSlots, nextHandle;
    RegUser *users;
    int nusers, capUsers;
    UINT bufIntervalMs;
    BOOL bufRunning;
    unsigned bufGen;
    struct Reg *nextDead; /* unregistered, freed with the server */
} Reg;

/* Actions run on the STA from the hidden window's messages. */
enum { A_BIND = 1, A_DELIVER, A_APPLY_WRITE, A_OPCOMPLETE };

typedef struct Action {
    int kind;
    Item *it;
    unsigned gen;
    /* A_APPLY_WRITE */
    VARIANT value;
    BOOL hasTs;
    double ts;
    BOOL allowed;
    struct Action *next;
} Action;

#define MAX_SINKS 8

typedef struct Sink {
    DWORD cookie;
    IDispatch *disp;
} Sink;

typedef struct ConnPoint {
    IConnectionPoint IConnectionPoint_iface;
    struct Server *srv;
    const IID *iid;
    const char *name;
    Sink sinks[MAX_SINKS];
    DWORD nextCookie;
} ConnPoint;

typedef struct Server {
    ILMXProxyServer5 ILMXProxyServer5_iface;
    IConnectionPointContainer IConnectionPointContainer_iface;
    ISupportErrorInfo ISupportErrorInfo_iface;
    LONG refs;
    HWND hwnd;
    ConnPoint cps[2];
    Reg **regs; /* index = registration handle */
    int capRegs;
    LONG nextReg;
    Action *qhead, *qtail;
    BOOL posted;
    Item *allItems;
    Reg *deadRegs;
    struct Server *nextServer;
} Server;

/* galaxy.c */
HRESULT galaxy_load(void);
Attr *galaxy_find(const WCHAR *ref, int *kind);
User *galaxy_user(const WCHAR *name);
double now_oadate(void);
BOOL coerce_value(const VARIANT *in, const Attr *a, VARIANT *out);
BOOL var_equal(const VARIANT *a, const VARIANT *b);
BOOL check_security(Reg *reg, Item *it, BOOL secured, LONG user, LONG verifier);

/* server.c */
extern HINSTANCE g_inst;
void trace(const char *fmt, ...);
void queue_action(Server *s, Action *a);
void fire_data_change(Item *it, const VARIANT *value, USHORT q, double ts, const MXSTATUS_PROXY *st);
void fire_write_complete(Item *it, const MXSTATUS_PROXY *st);
void fire_operation_complete(Item *it, const MXSTATUS_PROXY *st);
void fire_buffered(Item *it, Sample *samples, int n, const MXSTATUS_PROXY *st);
void start_buffer_timer(Reg *reg);
void stop_buffer_timer(Reg *reg);
Server *server_list(void);
void spawn_child(LONG marker);

/* Method semantics (galaxy.c), called by the vtable methods of server.c. */
HRESULT sem_register(Server *s, BSTR name, LONG *h);
HRESULT sem_unregister(Server *s, LONG h);
HRESULT sem_add_item(Server *s, LONG h, BSTR ref, BOOL buffered, LONG *hi);
HRESULT sem_remove_item(Server *s, LONG h, LONG hi);
HRESULT sem_advise(Server *s, LONG h, LONG hi, BOOL supervisory);
HRESULT sem_unadvise(Server *s, LONG h, LONG hi);
HRESULT sem_suspend(Server *s, LONG h, LONG hi);
HRESULT sem_activate(Server *s, LONG h, LONG hi);
HRESULT sem_write(Server *s, const char *method, LONG h, LONG hi, const VARIANT *v, const VARIANT *ts,
                  BOOL secured, LONG user, LONG verifier);
HRESULT sem_authenticate(Server *s, LONG h, BSTR user, BSTR password, LONG *id);
HRESULT sem_user_to_id(Server *s, LONG h, BSTR identity, LONG *id);
HRESULT sem_set_buffered_interval(Server *s, LONG h, LONG ms);
void sem_run(Server *s, Action *a);
void sem_flush_buffered(Reg *reg);
void sem_destroy(Server *s);

#endif
