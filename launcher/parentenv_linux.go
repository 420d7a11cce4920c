package launcher

import (
	"bytes"
	"fmt"
	"os"
)

// parentHolds names the secrets whose real value is still in the initial
// environment of the process that started cloak, typically the shell of a
// CI step that got the secret as a variable. The agent runs as the same
// user and can read that process's /proc/PID/environ (cloak's own is
// closed to it by PR_SET_DUMPABLE); unsetting the variable in the shell
// does not change that file, exec-ing cloak does.
func parentHolds(loaded []secret) (int, []string) {
	ppid := os.Getppid()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", ppid))
	if err != nil {
		return ppid, nil
	}
	var names []string
	for _, s := range loaded {
		if !s.isPlain() && bytes.Contains(b, []byte(s.real)) {
			names = append(names, s.name)
		}
	}
	return ppid, names
}
