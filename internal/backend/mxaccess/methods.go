package mxaccess

import (
	"fmt"

	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/variant"
)

// methodSpec is the compiled-in expectation for one method (MXACCESS.md
// §2.1). verified methods are called even when the type library cannot
// confirm their shape; the others are refused as unsupported unless the
// type library shows exactly the expected shape (§2.1, "Real worker").
type methodSpec struct {
	level    int
	in       []variant.VT
	ret      bool
	verified bool
}

const (
	i4  = variant.VT_I4
	str = variant.VT_BSTR
	vnt = variant.VT_VARIANT
)

// methodSpecs is the table of every ILMXProxyServer..5 method.
//
// [unverified] rows (verified=false) and where the guesses come from:
//   - AuthenticateUser(hLMX, user, password): order seen in callers.
//   - WriteSecured(hLMX, hItem, currentUserId, verifierUserId, value):
//     order after the handles is a guess.
//   - WriteSecured2: WriteSecured plus a trailing VARIANT timestamp.
//   - ArchestrAUserToId(hLMX, identity) -> id.
//   - AddItem2(hLMX, itemDef, context) -> hItem: the third parameter's type
//     is a guess (BSTR, as the backend interface passes a string).
//   - Suspend/Activate(hLMX, hItem), AddBufferedItem(hLMX, itemDef) -> hItem,
//     SetBufferedUpdateInterval(hLMX, intervalMs).
//
// Write2 is marked verified because two independent callers use this order.
var methodSpecs = map[string]methodSpec{
	"Register":                  {level: 1, in: []variant.VT{str}, ret: true, verified: true},
	"Unregister":                {level: 1, in: []variant.VT{i4}, verified: true},
	"AddItem":                   {level: 1, in: []variant.VT{i4, str}, ret: true, verified: true},
	"RemoveItem":                {level: 1, in: []variant.VT{i4, i4}, verified: true},
	"Advise":                    {level: 1, in: []variant.VT{i4, i4}, verified: true},
	"UnAdvise":                  {level: 1, in: []variant.VT{i4, i4}, verified: true},
	"Write":                     {level: 1, in: []variant.VT{i4, i4, vnt, i4}, verified: true},
	"WriteSecured":              {level: 1, in: []variant.VT{i4, i4, i4, i4, vnt}},
	"AuthenticateUser":          {level: 1, in: []variant.VT{i4, str, str}, ret: true},
	"ArchestrAUserToId":         {level: 2, in: []variant.VT{i4, str}, ret: true},
	"AddItem2":                  {level: 3, in: []variant.VT{i4, str, str}, ret: true},
	"Write2":                    {level: 4, in: []variant.VT{i4, i4, vnt, vnt, i4}, verified: true},
	"WriteSecured2":             {level: 4, in: []variant.VT{i4, i4, i4, i4, vnt, vnt}},
	"Suspend":                   {level: 4, in: []variant.VT{i4, i4}},
	"Activate":                  {level: 4, in: []variant.VT{i4, i4}},
	"AdviseSupervisory":         {level: 4, in: []variant.VT{i4, i4}, verified: true},
	"AddBufferedItem":           {level: 5, in: []variant.VT{i4, str}, ret: true},
	"SetBufferedUpdateInterval": {level: 5, in: []variant.VT{i4, i4}},
}

// MethodNames lists every method of the table, for DISPID resolution.
func MethodNames() []string {
	names := make([]string, 0, len(methodSpecs))
	for n := range methodSpecs {
		names = append(names, n)
	}
	return names
}

// ExpectedShape returns the compiled-in shape of method name, for the
// self-test and the logs.
func ExpectedShape(name string) (variant.Shape, bool) {
	s, ok := methodSpecs[name]
	if !ok {
		return variant.Shape{}, false
	}
	sh := variant.Shape{In: s.in}
	if s.ret {
		sh.Result, sh.ResultVT = variant.ResultRetval, i4
	}
	return sh, true
}

// checkMethod decides whether method may be called on this host, and how
// its result comes back. It returns a *backend.NotSupportedError when not.
func checkMethod(name string, level int, m MethodInfo, found bool) (variant.ResultKind, error) {
	spec, ok := methodSpecs[name]
	if !ok {
		return 0, &backend.NotSupportedError{Method: name, Reason: "not an MXAccess method"}
	}
	if level < spec.level {
		return 0, &backend.NotSupportedError{Method: name,
			Reason: fmt.Sprintf("interface level %d; the method needs ILMXProxyServer%d", level, spec.level)}
	}
	if !found {
		return 0, &backend.NotSupportedError{Method: name, Reason: "the object has no DISPID for it"}
	}
	want, _ := ExpectedShape(name)
	if m.Shape == nil {
		if !spec.verified {
			return 0, &backend.NotSupportedError{Method: name,
				Reason: "parameter shape " + want.String() + " is unverified and the type library does not describe the method"}
		}
		if spec.ret {
			return variant.ResultRetval, nil
		}
		return variant.ResultNone, nil
	}
	if !shapeMatches(want, *m.Shape) {
		return 0, &backend.NotSupportedError{Method: name,
			Reason: "type library shape " + m.Shape.String() + " differs from the expected " + want.String()}
	}
	return m.Shape.Result, nil
}

func shapeMatches(want, got variant.Shape) bool {
	if len(want.In) != len(got.In) {
		return false
	}
	for i := range want.In {
		w, g := want.In[i], got.In[i]
		if g == variant.VT_INT {
			g = variant.VT_I4
		}
		if w != g {
			return false
		}
	}
	if want.Result == variant.ResultNone {
		return got.Result == variant.ResultNone
	}
	if got.Result == variant.ResultNone {
		return false
	}
	switch got.ResultVT {
	case variant.VT_I4, variant.VT_INT, variant.VT_VARIANT:
		return true
	}
	return false
}
