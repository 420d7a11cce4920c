package launcher

import (
	"os"
	"path/filepath"
)

// stateDir is where cloak keeps its dummies and audit log: the XDG state
// directory (~/.local/state/cloak).
func stateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "cloak"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".local", "state", "cloak"), nil
}
