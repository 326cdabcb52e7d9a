// Package mxtypes is the MXAccess value vocabulary that the Go SDK and the
// server share, written once: HRESULTs and their names, VARIANT type codes
// and the VARTYPE each MXAccess data type travels as, data type names, OPC
// DA quality classes and their OPC UA status codes, MXSTATUS_PROXY entries,
// and constructors for the wire values (MxValue, Quality, MxStatus).
//
// It is hand-written and imports only the generated mxgateway.v1 package,
// so the public SDK can use it (MXACCESS.md §2.5, §4 and §5).
package mxtypes
