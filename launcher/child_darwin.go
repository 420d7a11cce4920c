package launcher

import "syscall"

// childAttr: macOS has no Pdeathsig. If cloak dies, the child lives on but
// its proxy is gone with cloak, so its requests fail (closed, not open);
// the README says so.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{}
}
