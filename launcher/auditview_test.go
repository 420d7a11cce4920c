package launcher

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestAuditGolden renders a recorded log (testdata/audit.log: one real
// session, and one with the rarer decisions) for a person.
func TestAuditGolden(t *testing.T) {
	for _, tc := range []struct {
		golden string
		o      AuditOptions
	}{
		{"audit.golden", AuditOptions{}},
		{"audit-alerts.golden", AuditOptions{Alerts: true}},
		{"audit-session.golden", AuditOptions{Session: "7f3a"}},
		{"audit-color.golden", AuditOptions{Color: true, Session: "7f3a"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			var out bytes.Buffer
			tc.o.Path, tc.o.Out, tc.o.Location = filepath.Join("testdata", "audit.log"), &out, time.UTC
			if err := Audit(tc.o); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.golden)
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./launcher -run TestAuditGolden -update)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("output differs from %s:\n%s", golden, out.String())
			}
		})
	}
}

func TestAuditFilters(t *testing.T) {
	path := filepath.Join("testdata", "audit.log")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Audit(AuditOptions{Path: path, Out: &out, JSON: true, Alerts: true}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.Contains(l, `"alert":true`) {
			want = append(want, l)
		}
	}
	if got := strings.TrimSpace(out.String()); got != strings.Join(want, "\n") || len(want) != 3 {
		t.Errorf("--json --alerts = %q, want the %d alert lines as logged", got, len(want))
	}
	out.Reset()
	if err := Audit(AuditOptions{Path: path, Out: &out, JSON: true, Session: "d4d7"}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 12 || strings.Contains(out.String(), "7f3a") {
		t.Errorf("--json --session d4d7: %d lines:\n%s", n, out.String())
	}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !json.Valid([]byte(l)) {
			t.Errorf("--json printed %q", l)
		}
	}
	if err := Audit(AuditOptions{Path: filepath.Join(t.TempDir(), "none.log"), Out: &out}); err == nil || !strings.Contains(err.Error(), "--audit-log") {
		t.Errorf("missing log: %v", err)
	}
}

// notifyWriter wakes a waiter on every write.
type notifyWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	wake chan struct{}
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf.Write(p)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// waitFor waits, up to a deadline, for s to be written.
func (w *notifyWriter) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		got := w.buf.String()
		w.mu.Unlock()
		if strings.Contains(got, s) {
			return
		}
		select {
		case <-w.wake:
		case <-deadline.C:
			t.Fatalf("%q never shown; output:\n%s", s, got)
		}
	}
}

func (w *notifyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func auditLine(session string, seq int, host string) string {
	return fmt.Sprintf(`{"time":"2026-01-02T03:04:05Z","session":%q,"seq":%d,"method":"GET","scheme":"https","host":%q,"path":"/","status":200,"decision":"allowed","reason":""}`+"\n", session, seq, host)
}

func TestAuditFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	appendTo := func(s string) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &notifyWriter{wake: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() {
		done <- Audit(AuditOptions{Path: path, Follow: true, Out: out, Context: ctx, Poll: time.Millisecond, Location: time.UTC})
	}()
	out.waitFor(t, "REQUEST\n") // the header, before the file exists

	appendTo(auditLine("s1", 1, "first.example.com:443"))
	out.waitFor(t, "https://first.example.com/")

	// A line written in two pieces is shown once it is whole.
	line := auditLine("s1", 2, "second.example.com:443")
	appendTo(line[:40])
	appendTo(line[40:])
	out.waitFor(t, "https://second.example.com/")

	// A truncated (rotated) file is read again from its start.
	if err := os.WriteFile(path, []byte(auditLine("s2", 1, "third.example.com:443")), 0o600); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "https://third.example.com/")

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("--follow did not stop when its context ended")
	}
	if n := strings.Count(out.String(), "example.com"); n != 3 {
		t.Errorf("%d lines shown, want 3 (no line twice, none in pieces):\n%s", n, out.String())
	}
}

// appenders write to one audit log at once: goroutines with their own
// file (as sessions in one process would have) and other processes.
const (
	appendWriters = 4
	appendLines   = 300
)

func appendLinesTo(path, who string) error {
	a, err := openAudit(path)
	if err != nil {
		return err
	}
	defer a.Close()
	// The proxy writes through its own zerolog logger on the same file.
	px := zerolog.New(a)
	long := strings.Repeat("x", 3000) // longer than a pipe's atomic write, but one write()
	for i := 0; i < appendLines; i++ {
		if i%2 == 0 {
			a.event(who, "start", map[string]string{"n": strconv.Itoa(i)})
		} else {
			px.Log().Str("session", who).Int("seq", i).Str("reason", long).Send()
		}
	}
	return nil
}

func TestAuditLogConcurrentAppends(t *testing.T) {
	if p := os.Getenv("CLOAK_TEST_APPEND"); p != "" {
		// Child mode, started by the test below.
		if err := appendLinesTo(p, os.Getenv("CLOAK_TEST_WHO")); err != nil {
			t.Fatal(err)
		}
		return
	}
	path := filepath.Join(t.TempDir(), "logs", "audit.log")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*appendWriters)
	for i := 0; i < appendWriters; i++ {
		wg.Add(2)
		go func(i int) {
			defer wg.Done()
			errs <- appendLinesTo(path, fmt.Sprintf("goroutine-%d", i))
		}(i)
		go func(i int) {
			defer wg.Done()
			cmd := exec.Command(exe, "-test.run=^TestAuditLogConcurrentAppends$")
			cmd.Env = append(os.Environ(), "CLOAK_TEST_APPEND="+path, fmt.Sprintf("CLOAK_TEST_WHO=process-%d", i))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("process %d: %v\n%s", i, err, out)
				return
			}
			errs <- nil
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("audit log created with mode %v, want 0600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 2*appendWriters*appendLines {
		t.Fatalf("%d lines, want %d", len(lines), 2*appendWriters*appendLines)
	}
	per := map[string]int{}
	for _, l := range lines {
		var e auditEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("interleaved or torn line: %.200q", l)
		}
		per[e.Session]++
	}
	for who, n := range per {
		if n != appendLines {
			t.Errorf("%s: %d lines, want %d", who, n, appendLines)
		}
	}
}
