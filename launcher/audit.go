package launcher

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
)

// auditLog is the audit file: appended to by every session (O_APPEND makes
// each line one write, so concurrent sessions do not interleave), private to
// the user.
type auditLog struct {
	*os.File
	log zerolog.Logger
}

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
	return &auditLog{File: f, log: zerolog.New(f)}, nil
}

// event records a session's start or end. A failed write here (a full disk)
// is reported, since the session's requests would not be recorded either.
func (a *auditLog) event(session, what string, fields map[string]string) {
	e := a.log.Log().
		Str("time", time.Now().UTC().Format(time.RFC3339Nano)).
		Str("session", session).
		Str("event", what)
	for k, v := range fields {
		e = e.Str(k, v)
	}
	e.Send()
}
