package launcher

import "golang.org/x/sys/unix"

// harden denies debuggers (PT_DENY_ATTACH), the nearest macOS has to
// Linux's PR_SET_DUMPABLE: a process of the same user cannot attach to cloak
// to read its memory. macOS has no /proc to guard.
func harden() error {
	return unix.PtraceDenyAttach()
}
