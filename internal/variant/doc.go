// Package variant decodes and encodes the OLE Automation data structures that
// the MXAccess worker exchanges with COM (VARIANT, DISPPARAMS, SAFEARRAY,
// EXCEPINFO, MXSTATUS_PROXY and the ITypeInfo descriptors) using their
// 32-bit (windows/386) memory layouts, and converts VARIANT values to and
// from the public MxValue.
//
// It is plain Go with no COM or Windows dependency, so every rule in it runs
// and is tested on every OS. Memory is reached only through the Memory
// interface: on windows/386 the COM layer reads process memory, tests use an
// Arena of byte-level fixtures.
package variant
