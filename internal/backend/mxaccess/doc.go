// Package mxaccess is the backend that drives the real MXAccess COM object
// (LMXProxy.LMXProxyServer) on windows/386.
//
// The package is split along the COM boundary. Everything that decides
// something — which methods this host supports, how arguments are typed,
// how results and HRESULTs become replies, how event arguments become
// events, which handles teardown must release, the bounded event queue —
// is plain Go in files without build tags, driven through the Object
// interface and tested on every OS with fakes. The files built only for
// windows && 386 implement Object: they create the object on an STA
// (internal/com), resolve DISPIDs, read the type library, connect the
// event sinks and make the IDispatch calls.
package mxaccess
