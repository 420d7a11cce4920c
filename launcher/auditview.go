package launcher

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
)

// AuditOptions is one `cloak audit`: read the audit log and show it to a
// person, or filter it as JSON.
type AuditOptions struct {
	Path    string // default: audit.log in the state dir
	Follow  bool   // keep reading as sessions append
	Alerts  bool   // only alerts (a dummy where it may not go, fronting)
	Session string // only this session (a prefix is enough)
	JSON    bool   // the lines as logged, filtered
	Color   bool   // colour the output (see UseColor)
	Out     io.Writer

	// Context ends --follow; Poll is how often it looks for new lines
	// (default 250ms); Location is the zone times are shown in (default
	// local).
	Context  context.Context
	Poll     time.Duration
	Location *time.Location
}

// UseColor reports whether w is a terminal that wants colour: not when
// NO_COLOR is set (no-color.org) or TERM is dumb.
func UseColor(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	return isatty.IsTerminal(f.Fd())
}

// auditEntry is one audit line: a request or tunnel (proxy/audit.go), or a
// session's start or end (audit.go).
type auditEntry struct {
	Time       string   `json:"time"`
	Session    string   `json:"session"`
	Event      string   `json:"event"`
	Command    string   `json:"command"`
	Exit       string   `json:"exit"`
	Seq        uint64   `json:"seq"`
	Method     string   `json:"method"`
	Scheme     string   `json:"scheme"`
	Host       string   `json:"host"`
	Path       string   `json:"path"`
	Status     int      `json:"status"`
	ReqBytes   int64    `json:"req_bytes"`
	RespBytes  int64    `json:"resp_bytes"`
	DurationMs float64  `json:"duration_ms"`
	TtfbMs     float64  `json:"ttfb_ms"`
	Injected   []string `json:"injected"`
	Decision   string   `json:"decision"`
	Reason     string   `json:"reason"`
	Alert      bool     `json:"alert"`
}

// refused mirrors proxy's record.refused: what the child did not get.
func (e auditEntry) refused() bool {
	switch e.Decision {
	case "allowed", "intercepted", "passed-through", "":
		return false
	}
	return true
}

// Audit shows the audit log.
func Audit(o AuditOptions) error {
	if o.Path == "" {
		state, err := stateDir()
		if err != nil {
			return fmt.Errorf("finding the state directory: %w (name the log with --audit-log)", err)
		}
		o.Path = filepath.Join(state, "audit.log")
	}
	if o.Context == nil {
		o.Context = context.Background()
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	v := &auditView{o: o}
	if !o.JSON {
		v.header()
	}
	var err error
	if o.Follow {
		err = followLines(o.Context, o.Path, o.Poll, v.line)
	} else {
		err = readLines(o.Path, v.line)
		if err == nil && !o.JSON {
			v.footer()
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no audit log at %s yet (a `cloak run` writes it; or name another with --audit-log)", o.Path)
	}
	return err
}

// auditView renders lines for a person, counting as it goes.
type auditView struct {
	o                        AuditOptions
	n                        int // line number in the file
	requests, refused, alert int
	sessions                 map[string]bool
}

func (v *auditView) line(raw []byte) {
	v.n++
	raw = bytes.TrimRight(raw, "\r\n")
	if len(bytes.TrimSpace(raw)) == 0 {
		return
	}
	var e auditEntry
	if err := json.Unmarshal(raw, &e); err != nil {
		if !v.o.Alerts && v.o.Session == "" {
			if v.o.JSON {
				return // not JSON: nothing to pass on
			}
			fmt.Fprintf(v.o.Out, "%s\n", v.paint("33", fmt.Sprintf("? line %d is not an audit record", v.n)))
		}
		return
	}
	if v.o.Session != "" && !strings.HasPrefix(e.Session, v.o.Session) {
		return
	}
	if v.o.Alerts && !e.Alert {
		return
	}
	if v.o.JSON {
		fmt.Fprintf(v.o.Out, "%s\n", raw)
		return
	}
	if v.sessions == nil {
		v.sessions = map[string]bool{}
	}
	v.sessions[e.Session] = true
	if e.Event != "" {
		fmt.Fprintln(v.o.Out, v.paint("1", v.event(e)))
		return
	}
	v.requests++
	if e.refused() {
		v.refused++
	}
	if e.Alert {
		v.alert++
	}
	fmt.Fprintln(v.o.Out, v.paint(colourOf(e), v.request(e)))
}

// Column layout, shared by the header and every line.
const auditRow = "%-19s  %-12s %5s %1s %-14s %3s %-7s %15s %8s  %s"

func (v *auditView) header() {
	fmt.Fprintln(v.o.Out, v.paint("2", strings.TrimRight(fmt.Sprintf(auditRow,
		"TIME", "SESSION", "SEQ", "", "DECISION", "ST", "METHOD", "SENT/RECEIVED", "TIME", "REQUEST"), " ")))
}

func (v *auditView) footer() {
	fmt.Fprintf(v.o.Out, "%d request(s) in %d session(s): %d refused, %d alert(s)\n", v.requests, len(v.sessions), v.refused, v.alert)
}

func (v *auditView) request(e auditEntry) string {
	mark := ""
	if e.Alert {
		mark = "!"
	}
	status := "-"
	if e.Status != 0 {
		status = fmt.Sprint(e.Status)
	}
	target := e.target()
	if len(e.Injected) > 0 {
		target += "  [" + strings.Join(e.Injected, ",") + "]"
	}
	if e.refused() {
		target += "  " + e.Reason
	}
	return strings.TrimRight(fmt.Sprintf(auditRow,
		v.when(e.Time), e.Session, fmt.Sprint(e.Seq), mark, e.Decision, status, clip(e.Method, 7),
		humanBytes(e.ReqBytes)+"/"+humanBytes(e.RespBytes), humanMs(e.DurationMs), target), " ")
}

func (v *auditView) event(e auditEntry) string {
	what := "session " + e.Event
	switch e.Event {
	case "start":
		what += ": " + e.Command
	case "end":
		what += ": exit status " + e.Exit
	}
	return fmt.Sprintf("%-19s  %-12s %s", v.when(e.Time), e.Session, what)
}

// target is the request as a URL, with the default port left out.
func (e auditEntry) target() string {
	host := e.Host
	if h, ok := strings.CutSuffix(host, ":443"); ok && e.Scheme == "https" {
		host = h
	} else if h, ok := strings.CutSuffix(host, ":80"); ok && e.Scheme == "http" {
		host = h
	}
	if e.Method == "CONNECT" || e.Path == "" {
		return host
	}
	return e.Scheme + "://" + host + e.Path
}

func (v *auditView) when(t string) string {
	ts, err := time.Parse(time.RFC3339Nano, t)
	if err != nil {
		return clip(t, 19)
	}
	return ts.In(v.o.Location).Format("2006-01-02 15:04:05")
}

// colourOf: alerts red, other refusals yellow, untouched tunnels dim.
func colourOf(e auditEntry) string {
	switch {
	case e.Alert:
		return "1;31"
	case e.refused():
		return "33"
	case e.Decision == "passed-through" || e.Decision == "intercepted":
		return "2"
	}
	return ""
}

func (v *auditView) paint(code, s string) string {
	if !v.o.Color || code == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "~"
}

func humanBytes(n int64) string {
	const k = 1024
	switch {
	case n < k:
		return fmt.Sprint(n)
	case n < k*k:
		return fmt.Sprintf("%.1fK", float64(n)/k)
	case n < k*k*k:
		return fmt.Sprintf("%.1fM", float64(n)/(k*k))
	}
	return fmt.Sprintf("%.1fG", float64(n)/(k*k*k))
}

func humanMs(ms float64) string {
	switch {
	case ms < 10:
		return fmt.Sprintf("%.1fms", ms)
	case ms < 1000:
		return fmt.Sprintf("%.0fms", ms)
	case ms < 60000:
		return fmt.Sprintf("%.1fs", ms/1000)
	}
	s := int(ms / 1000)
	return fmt.Sprintf("%dm%02ds", s/60, s%60)
}

// readLines calls line for each line of the file.
func readLines(path string, line func([]byte)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for {
		b, err := r.ReadBytes('\n')
		if len(b) > 0 {
			line(b)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
	}
}

// followLines is readLines that keeps going: at the end of the file it
// looks again every poll for more, as `tail -f` does, until ctx ends. Only
// whole lines are passed on (a session may be mid-write); a file that
// shrinks was rotated or truncated, and is read again from its start. A
// file not there yet is waited for.
func followLines(ctx context.Context, path string, poll time.Duration, line func([]byte)) error {
	tick := time.NewTicker(poll)
	defer tick.Stop()
	wait := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
			return true
		}
	}
	var f *os.File
	for f == nil {
		var err error
		f, err = os.Open(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if f == nil && !wait() {
			return nil
		}
	}
	defer func() { f.Close() }()
	r := bufio.NewReader(f)
	var partial []byte
	var off int64
	for {
		b, err := r.ReadBytes('\n')
		off += int64(len(b))
		if err == nil {
			line(append(partial, b...))
			partial = nil
			continue
		}
		if err != io.EOF {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		partial = append(partial, b...)
		if !wait() {
			return nil
		}
		if st, err := os.Stat(path); err == nil && st.Size() < off {
			nf, err := os.Open(path)
			if err != nil {
				continue
			}
			f.Close()
			f, off, partial = nf, 0, nil
			r.Reset(f)
		}
	}
}
