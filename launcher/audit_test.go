package launcher

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestAuditLogReportsFailedWrites: on a full disk (/dev/full fails every
// write) the start line's error reaches the caller, and every line lost
// later, the proxy's included, is counted with its cause.
func TestAuditLogReportsFailedWrites(t *testing.T) {
	a, err := openAudit("/dev/full")
	if err != nil {
		t.Fatalf("opening /dev/full: %v", err)
	}
	defer a.Close()
	if err := a.event("s1", "start", nil); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("start line on a full disk: err %v, want ENOSPC", err)
	}
	if _, err := a.Write([]byte(`{"decision":"allowed"}` + "\n")); err == nil {
		t.Fatal("a proxy line on a full disk reported no error")
	}
	if lost, why := a.failures(); lost != 2 || !errors.Is(why, syscall.ENOSPC) {
		t.Fatalf("failures = %d, %v; want 2, ENOSPC", lost, why)
	}
}

func TestAuditLogWritesPrivateJSONLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "audit.log")
	a, err := openAudit(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.event("s1", "start", map[string]string{"command": "claude"}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var line map[string]string
	if err := json.Unmarshal(b, &line); err != nil || line["session"] != "s1" || line["event"] != "start" || line["command"] != "claude" {
		t.Fatalf("line %q (%v)", b, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode %v, want 0600", fi.Mode().Perm())
	}
	if lost, _ := a.failures(); lost != 0 {
		t.Errorf("%d lines counted as lost", lost)
	}
}
