package launcher

import (
	"os"
	"path/filepath"
)

// configDir holds the user's own cloak files (secrets.env, policy): outside
// any project, so an agent working in a project tree cannot edit them.
func configDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "cloak"), nil
}
