package launcher

import (
	"os"
	"path/filepath"
)

// stateDir is where cloak keeps its dummies and audit log:
// ~/Library/Application Support/cloak, macOS's place for such files.
func stateDir() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, "Library", "Application Support", "cloak"), nil
}
