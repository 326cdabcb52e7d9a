//go:build windows

package com

//go:generate go run golang.org/x/sys/windows/mkwinsyscall -output zsyscall_windows.go syscall_windows.go

// msg mirrors the Win32 MSG structure with pointer-sized fields, so it has
// the right layout on 386 (28 bytes plus lPrivate) and would on amd64 too.
// go-ole's ole.Msg is 386-only.
type msg struct {
	hwnd     uintptr
	message  uint32
	wParam   uintptr
	lParam   uintptr
	time     uint32
	ptX      int32
	ptY      int32
	lPrivate uint32
}

// Bindings x/sys/windows and go-ole lack (MXACCESS.md §8.5 point 6, §8.6).
// Functions returning an HRESULT declare it as a non-err error result, which
// mkwinsyscall turns into syscall.Errno(hr) when non-zero.

//sys	peekMessage(m *msg, hwnd uintptr, filterMin uint32, filterMax uint32, removeMsg uint32) (ok bool) = user32.PeekMessageW
//sys	translateMessage(m *msg) (translated bool) = user32.TranslateMessage
//sys	dispatchMessage(m *msg) (ret uintptr) = user32.DispatchMessageW
//sys	msgWaitForMultipleObjectsEx(count uint32, handles *uintptr, millis uint32, wakeMask uint32, flags uint32) (event uint32, err error) [failretval==0xFFFFFFFF] = user32.MsgWaitForMultipleObjectsEx

//sys	sysAllocStringLen(s *uint16, n uint32) (bstr uintptr) = oleaut32.SysAllocStringLen
//sys	sysFreeString(bstr uintptr) = oleaut32.SysFreeString
//sys	variantClear(v uintptr) (hr error) = oleaut32.VariantClear
//sys	safeArrayCreateVector(vt uint16, lower int32, count uint32) (sa uintptr) = oleaut32.SafeArrayCreateVector
//sys	safeArrayPutElement(sa uintptr, index *int32, v uintptr) (hr error) = oleaut32.SafeArrayPutElement
//sys	safeArrayAccessData(sa uintptr, data *uintptr) (hr error) = oleaut32.SafeArrayAccessData
//sys	safeArrayUnaccessData(sa uintptr) (hr error) = oleaut32.SafeArrayUnaccessData
//sys	safeArrayDestroy(sa uintptr) (hr error) = oleaut32.SafeArrayDestroy
