package launcher

import "syscall"

// childAttr kills the child if cloak dies: without cloak the child has no
// proxy, and it must fail closed, not outlive it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
