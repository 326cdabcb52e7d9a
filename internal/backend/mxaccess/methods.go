package mxaccess

import (
	"fmt"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/api/mxgateway/v1/catalog"

	"github.com/mxgateway/mxgateway/internal/backend"
	"github.com/mxgateway/mxgateway/internal/variant"
)

// methodSpec is the compiled-in COM shape of one method (MXACCESS.md §2.1):
// its parameter VARTYPEs, and whether that shape is verified. verified
// methods are called even when the type library cannot confirm their
// shape; the others are refused as unsupported unless the type library
// shows exactly the expected shape (§2.1, "Real worker"). The interface
// level and whether the method returns a value come from the command
// catalogue (TestMethodSpecsCoverTheCatalogue).
type methodSpec struct {
	in       []variant.VT
	verified bool
}

// level is the interface level that has the method.
func (s methodSpec) level(name string) int { return catalog.MethodLevel(name) }

// returns reports whether the method has an [out, retval] result.
func returns(name string) bool {
	return catalog.ByMethod(name).Result() != mxgatewayv1.CommandResult_COMMAND_RESULT_NONE
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
	"Register":                  {in: []variant.VT{str}, verified: true},
	"Unregister":                {in: []variant.VT{i4}, verified: true},
	"AddItem":                   {in: []variant.VT{i4, str}, verified: true},
	"RemoveItem":                {in: []variant.VT{i4, i4}, verified: true},
	"Advise":                    {in: []variant.VT{i4, i4}, verified: true},
	"UnAdvise":                  {in: []variant.VT{i4, i4}, verified: true},
	"Write":                     {in: []variant.VT{i4, i4, vnt, i4}, verified: true},
	"WriteSecured":              {in: []variant.VT{i4, i4, i4, i4, vnt}},
	"AuthenticateUser":          {in: []variant.VT{i4, str, str}},
	"ArchestrAUserToId":         {in: []variant.VT{i4, str}},
	"AddItem2":                  {in: []variant.VT{i4, str, str}},
	"Write2":                    {in: []variant.VT{i4, i4, vnt, vnt, i4}, verified: true},
	"WriteSecured2":             {in: []variant.VT{i4, i4, i4, i4, vnt, vnt}},
	"Suspend":                   {in: []variant.VT{i4, i4}},
	"Activate":                  {in: []variant.VT{i4, i4}},
	"AdviseSupervisory":         {in: []variant.VT{i4, i4}, verified: true},
	"AddBufferedItem":           {in: []variant.VT{i4, str}},
	"SetBufferedUpdateInterval": {in: []variant.VT{i4, i4}},
}

// MethodNames lists every MXAccess method, for DISPID resolution.
func MethodNames() []string { return catalog.Methods() }

// ExpectedShape returns the compiled-in shape of method name, for the
// self-test and the logs.
func ExpectedShape(name string) (variant.Shape, bool) {
	s, ok := methodSpecs[name]
	if !ok {
		return variant.Shape{}, false
	}
	sh := variant.Shape{In: s.in}
	if returns(name) {
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
	if level < spec.level(name) {
		return 0, &backend.NotSupportedError{Method: name,
			Reason: fmt.Sprintf("interface level %d; the method needs ILMXProxyServer%d", level, spec.level(name))}
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
		if returns(name) {
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
