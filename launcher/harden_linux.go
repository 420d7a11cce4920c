package launcher

import "golang.org/x/sys/unix"

// harden makes cloak non-dumpable before any secret is read: a process of
// the same user (the child) can then not read /proc/<cloak>/environ or
// /proc/<cloak>/mem, nor attach with ptrace.
func harden() error {
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
