package com

// HRESULTs the sink and the invoke wrapper produce or test for, as the
// unsigned values COM passes in registers. The signed values MXAccess
// results carry on the wire, shared with the SDK, are mxtypes'; this is the
// COM ABI's view (TestHRESULTsAgreeWithMxtypes keeps the overlap equal).
const (
	S_OK                   = 0x00000000
	S_FALSE                = 0x00000001
	E_NOTIMPL              = 0x80004001
	E_NOINTERFACE          = 0x80004002
	E_POINTER              = 0x80004003
	E_FAIL                 = 0x80004005
	E_UNEXPECTED           = 0x8000FFFF
	E_INVALIDARG           = 0x80070057
	E_OUTOFMEMORY          = 0x8007000E
	DISP_E_MEMBERNOTFOUND  = 0x80020003
	DISP_E_UNKNOWNNAME     = 0x80020006
	DISP_E_EXCEPTION       = 0x80020009
	DISP_E_BADPARAMCOUNT   = 0x8002000E
	DISP_E_TYPEMISMATCH    = 0x80020005
	RPC_E_CHANGED_MODE     = 0x80010106
	CONNECT_E_NOCONNECTION = 0x80040200
)
