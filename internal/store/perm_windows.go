//go:build windows

package store

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// restrictToOwner replaces dir's ACL with a protected one (no inherited
// entries) that grants full control to SYSTEM, the Administrators group and
// the current user, inherited by everything created inside. Unix mode bits mean
// nothing on Windows, and %ProgramData% is readable by every local user by
// default, so the pepper, the bootstrap admin key and the database need this.
func restrictToOwner(dir string) error {
	tok := windows.GetCurrentProcessToken()
	user, err := tok.GetTokenUser()
	if err != nil {
		return fmt.Errorf("current user: %w", err)
	}
	sddl := "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;" + user.User.Sid.String() + ")"
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err != nil {
		return fmt.Errorf("security descriptor: %w", err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("dacl: %w", err)
	}
	return windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION,
		nil, nil, dacl, nil)
}
