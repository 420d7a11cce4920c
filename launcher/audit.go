package launcher

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// auditLog is the audit file: appended to by every session (O_APPEND makes
// each line one write, so concurrent sessions do not interleave), private to
// the user. It counts the lines it could not write, so that a log that
// breaks during a run (a disk that fills up) is reported, never silently off.
type auditLog struct {
	f   *os.File
	log zerolog.Logger

	mu     sync.Mutex
	lost   int
	reason error // the first failed write
}

var quietZerolog sync.Once

// openAudit opens the log and writes nothing yet; a log that cannot be
// opened stops the run: the child never runs with the audit log off.
func openAudit(path string) (*auditLog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit log: %w (choose another path with --audit-log)", pathErr(err))
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w (choose another path with --audit-log)", pathErr(err))
	}
	// zerolog reports a failed write on stderr, which is the child's
	// terminal; auditLog counts failures itself and cloak reports them.
	// The handler is a global: set it once, whoever opens a log.
	quietZerolog.Do(func() { zerolog.ErrorHandler = func(error) {} })
	a := &auditLog{f: f}
	a.log = zerolog.New(a)
	return a, nil
}

// Write appends one line; the proxy writes its audit lines through it too.
func (a *auditLog) Write(p []byte) (int, error) {
	n, err := a.f.Write(p)
	if err == nil && n < len(p) {
		err = errors.New("short write")
	}
	if err != nil {
		a.mu.Lock()
		a.lost++
		if a.reason == nil {
			a.reason = err
		}
		a.mu.Unlock()
	}
	return n, err
}

// Close closes the file.
func (a *auditLog) Close() error { return a.f.Close() }

// failures reports how many lines could not be written, and why the first
// one failed.
func (a *auditLog) failures() (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lost, a.reason
}

// event records a session's start or end, and says whether the line was
// written: the start line is written before the child starts, so a log that
// cannot take it (a full disk, /dev/full) stops the run there.
func (a *auditLog) event(session, what string, fields map[string]string) error {
	before, _ := a.failures()
	e := a.log.Log().
		Str("time", time.Now().UTC().Format(time.RFC3339Nano)).
		Str("session", session).
		Str("event", what)
	for k, v := range fields {
		e = e.Str(k, v)
	}
	e.Send()
	if after, err := a.failures(); after > before {
		return pathErr(err)
	}
	return nil
}
