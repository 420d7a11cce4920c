package launcher

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// fromTerminal reports whether s most likely came from the terminal (Ctrl-C,
// Ctrl-\): the kernel sends those to the whole foreground process group, the
// child included, and forwarding a second copy would make Claude Code see a
// double Ctrl-C, which means "exit".
func fromTerminal(s os.Signal) bool {
	if s != syscall.SIGINT && s != syscall.SIGQUIT {
		return false
	}
	pgrp, err := unix.IoctlGetInt(int(os.Stdin.Fd()), unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}
