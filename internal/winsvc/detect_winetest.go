//go:build windows && winetest

package winsvc

import (
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
)

// isWindowsService, in the Wine suite's build only (tag winetest, see
// test/wine): the parent process is services.exe, in any session. Wine runs
// services.exe in session 1 (it has no session 0), so x/sys's check, which
// the product build uses, never sees a service under Wine (proven by
// test/wine/quirks "services-session"). Nothing else differs.
func isWindowsService() (bool, error) {
	var self windows.PROCESS_BASIC_INFORMATION
	n := uint32(unsafe.Sizeof(self))
	if err := windows.NtQueryInformationProcess(windows.CurrentProcess(), windows.ProcessBasicInformation,
		unsafe.Pointer(&self), n, &n); err != nil {
		return false, err
	}
	size := uint32(1 << 20)
	var buf []byte
	for {
		buf = make([]byte, size)
		err := windows.NtQuerySystemInformation(windows.SystemProcessInformation, unsafe.Pointer(&buf[0]), size, &size)
		if err == nil {
			break
		}
		if err != windows.STATUS_INFO_LENGTH_MISMATCH {
			return false, err
		}
	}
	for off := uintptr(0); ; {
		p := (*windows.SYSTEM_PROCESS_INFORMATION)(unsafe.Pointer(&buf[off]))
		if p.UniqueProcessID == self.InheritedFromUniqueProcessId {
			return strings.EqualFold(p.ImageName.String(), "services.exe"), nil
		}
		if p.NextEntryOffset == 0 {
			return false, nil
		}
		off += uintptr(p.NextEntryOffset)
	}
}
