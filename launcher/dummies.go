package launcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cloak-dev/cloak/scrub"
)

// dummyFile keeps the dummies handed out, by secret name, so a secret gets
// the same dummy on every run on this machine: Claude Code asks the user to
// approve a new API key by its last 20 characters. Dummies are worthless,
// but the file is still private (0600).
type dummyFile struct {
	Version int               `json:"version"`
	Dummies map[string]string `json:"dummies"`
}

// assignDummies gives each secret a dummy, reusing the stored one where it
// still fits, and saves the store.
func assignDummies(path string, loaded []secret) ([]scrub.Secret, error) {
	store := dummyFile{Version: 1, Dummies: map[string]string{}}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &store); err != nil || store.Dummies == nil {
			// A damaged store only costs new dummies.
			store = dummyFile{Version: 1, Dummies: map[string]string{}}
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("reading dummies: %w", pathErr(err))
	}
	var out []scrub.Secret
	changed := false
	for _, s := range loaded {
		if s.isPlain() {
			continue
		}
		prev := store.Dummies[s.name]
		d, err := scrub.Dummy(s.real, prev)
		if err != nil {
			return nil, fmt.Errorf("making a dummy for %s (%s): %w", s.name, s.source, err)
		}
		if d != prev {
			store.Dummies[s.name] = d
			changed = true
		}
		out = append(out, scrub.Secret{Name: s.name, Real: s.real, Dummy: d})
	}
	if changed {
		if err := writeDummies(path, store); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// writeDummies replaces the store atomically, so concurrent runs never see
// half a file.
func writeDummies(path string, store dummyFile) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("saving dummies: %w", pathErr(err))
	}
	data, err := json.MarshalIndent(store, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".dummies-*")
	if err != nil {
		return fmt.Errorf("saving dummies: %w", pathErr(err))
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("saving dummies: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("saving dummies: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("saving dummies: %w", pathErr(err))
	}
	return nil
}
