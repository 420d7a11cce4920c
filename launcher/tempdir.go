package launcher

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// cleanStaleTempDirs removes temp dirs left by runs that were killed before
// they could clean up: cloak-PID-* of this user whose PID is gone.
func cleanStaleTempDirs() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), "cloak-*-*"))
	for _, m := range matches {
		parts := strings.SplitN(filepath.Base(m), "-", 3)
		pid, err := strconv.Atoi(parts[1])
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		fi, err := os.Lstat(m)
		if err != nil || !fi.IsDir() {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() {
			continue
		}
		if alive(pid) {
			continue
		}
		_ = os.RemoveAll(m)
	}
}

// alive reports whether a process exists (signal 0 checks without sending).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
