package main

// End-to-end tests: they build the cloak binary, run it with real clients
// (curl, node, sh) as the child, against TLS servers on loopback that the
// tests start, and grep everything cloak and the child printed or wrote for
// the real secret values.

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cloakBin is the binary under test, built once by TestMain.
var cloakBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cloak-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cloakBin = filepath.Join(dir, "cloak")
	build := exec.Command("go", "build", "-o", cloakBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building cloak:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// randomReal makes a fresh fake credential for one test, shaped like the
// real thing, so a leak is unmistakable in any output.
func randomReal(prefix string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return prefix + strings.ToUpper(hex.EncodeToString(b))[:n]
}

// upstreamCA signs the loopback upstream's certificates; cloak trusts it
// through --upstream-ca, as a split-horizon user would.
type upstreamCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	pemPath string
	mu      sync.Mutex
	leaves  map[string]*tls.Certificate
}

func newUpstreamCA(t *testing.T) *upstreamCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e upstream CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	path := filepath.Join(t.TempDir(), "upstream-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &upstreamCA{cert: cert, key: key, pemPath: path, leaves: map[string]*tls.Certificate{}}
}

func (c *upstreamCA) leaf(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	host := hello.ServerName
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.leaves[host]; ok {
		return l, nil
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host},
		DNSNames:  []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return nil, err
	}
	l := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	c.leaves[host] = l
	return l, nil
}

// request is what the upstream saw of one request.
type request struct {
	Method string
	Host   string
	URI    string
	Header http.Header
	Body   string
}

// upstream is a TLS server on loopback that answers for every host name
// (api.anthropic.com, api.github.com, unbound.test, ...) and records what
// it saw.
type upstream struct {
	t       *testing.T
	ca      *upstreamCA
	srv     *httptest.Server
	mu      sync.Mutex
	seen    []request
	handler http.HandlerFunc
}

func newUpstream(t *testing.T, handler http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{t: t, ca: newUpstreamCA(t), handler: handler}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.seen = append(u.seen, request{Method: r.Method, Host: r.Host, URI: r.RequestURI, Header: r.Header.Clone(), Body: string(body)})
		u.mu.Unlock()
		if u.handler != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			u.handler(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`+"\n")
	}))
	u.srv.TLS = &tls.Config{GetCertificate: u.ca.leaf}
	u.srv.StartTLS()
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) port() string {
	_, p, _ := net.SplitHostPort(u.srv.Listener.Addr().String())
	return p
}

func (u *upstream) requests() []request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]request(nil), u.seen...)
}

// resolveFlags sends each host's port 443 to the upstream.
func (u *upstream) resolveFlags(hosts ...string) []string {
	var out []string
	for _, h := range hosts {
		out = append(out, "--resolve", h+":443:127.0.0.1:"+u.port())
	}
	return out
}

// session is one cloak run's surroundings: its own HOME (state, config,
// dummies), secrets file and audit log.
type session struct {
	t        *testing.T
	home     string
	envFile  string
	audit    string
	reals    []string // values that must never appear anywhere
	upstream *upstream
	extraEnv []string
	cred     *syscall.Credential // run cloak as this user (see newUserSession)
	dir      string              // the working directory (default home)
	noFlag   bool                // no --env-file: cloak finds envFile by default
	timeout  time.Duration       // how long a run may take (default 60s)
	planted  []string            // files the test itself put real values in
}

func newSession(t *testing.T, u *upstream, secrets map[string]string) *session {
	t.Helper()
	home := t.TempDir()
	s := &session{t: t, home: home, upstream: u, envFile: filepath.Join(home, "secrets.env"), audit: filepath.Join(home, "audit.log")}
	var b strings.Builder
	for k, v := range secrets {
		fmt.Fprintf(&b, "%s=%s\n", k, v)
		s.reals = append(s.reals, v)
	}
	if err := os.WriteFile(s.envFile, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// env is the environment cloak itself runs in.
func (s *session) env() []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + s.home,
		"XDG_STATE_HOME=" + filepath.Join(s.home, "state"),
		"XDG_CONFIG_HOME=" + filepath.Join(s.home, "config"),
		"TMPDIR=" + filepath.Join(s.home, "tmp"),
		"LANG=C",
	}
	_ = os.MkdirAll(filepath.Join(s.home, "tmp"), 0o700)
	return append(env, s.extraEnv...)
}

// args builds `cloak run` with the session's files and the upstream wired in.
func (s *session) args(flags []string, child ...string) []string {
	a := []string{"run", "--audit-log", s.audit}
	if !s.noFlag {
		a = append(a, "--env-file", s.envFile)
	}
	if s.upstream != nil {
		a = append(a, "--upstream-ca", s.upstream.ca.pemPath)
		a = append(a, s.upstream.resolveFlags("api.anthropic.com", "api.github.com", "unbound.test", "evil.test")...)
	}
	a = append(a, flags...)
	return append(append(a, "--"), child...)
}

// command is `cloak run` in the session's surroundings, as its user.
func (s *session) command(flags []string, child ...string) *exec.Cmd {
	cmd := exec.Command(cloakBin, s.args(flags, child...)...)
	cmd.Env = s.env()
	cmd.Dir = s.workDir()
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

// result is what one cloak run produced.
type result struct {
	stdout, stderr string
	code           int
}

// run runs cloak to completion and checks that no real value escaped.
func (s *session) run(flags []string, child ...string) result {
	s.t.Helper()
	cmd := s.command(flags, child...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(s.limit()):
		_ = cmd.Process.Kill()
		<-done
		s.t.Fatalf("cloak did not finish in %v; stderr:\n%s", s.limit(), errb.String())
	}
	r := result{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
	if ws := cmd.ProcessState; ws != nil && r.code == -1 {
		r.code = 128 + 9
	}
	s.assertNoLeak(r.stdout, r.stderr)
	return r
}

// assertNoLeak fails if any real value is in the given outputs or in any
// file cloak may have written: its HOME (state, dummies, audit log) and temp
// dirs.
func (s *session) assertNoLeak(outputs ...string) {
	s.t.Helper()
	for _, real := range s.reals {
		for i, o := range outputs {
			if strings.Contains(o, real) {
				s.t.Errorf("output %d holds a real secret value", i)
			}
		}
		_ = filepath.WalkDir(s.home, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || path == s.envFile || slices.Contains(s.planted, path) {
				return nil
			}
			b, err := os.ReadFile(path)
			if err == nil && bytes.Contains(b, []byte(real)) {
				s.t.Errorf("file %s holds a real secret value", path)
			}
			return nil
		})
	}
}

func (s *session) workDir() string {
	if s.dir != "" {
		return s.dir
	}
	return s.home
}

func (s *session) limit() time.Duration {
	if s.timeout > 0 {
		return s.timeout
	}
	return 60 * time.Second
}

// auditLines reads the session's audit log.
func (s *session) auditLines() []string {
	b, err := os.ReadFile(s.audit)
	if err != nil {
		s.t.Fatalf("reading the audit log: %v", err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// auditHas reports whether some audit line holds every one of the parts.
func (s *session) auditHas(parts ...string) bool {
	for _, l := range s.auditLines() {
		ok := true
		for _, p := range parts {
			if !strings.Contains(l, p) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// start runs cloak without waiting, with its stdout readable line by line.
func (s *session) start(flags []string, child ...string) (*exec.Cmd, *bufio.Reader, *bytes.Buffer) {
	s.t.Helper()
	cmd := s.command(flags, child...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, bufio.NewReader(stdout), &errb
}

// readLine reads one line or fails the test after the deadline.
func readLine(t *testing.T, r *bufio.Reader, within time.Duration) string {
	t.Helper()
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() { l, err := r.ReadString('\n'); ch <- res{l, err} }()
	select {
	case x := <-ch:
		if x.err != nil {
			t.Fatalf("reading the child's output: %v (got %q)", x.err, x.s)
		}
		return strings.TrimRight(x.s, "\n")
	case <-time.After(within):
		t.Fatalf("no line from the child within %v", within)
	}
	return ""
}

// need fails (never skips) when a client the tests drive is missing:
// .ci/run installs them.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed; .ci/run installs it (or: apt-get install %s)", tool, tool)
		}
	}
}

// envValue finds NAME=value in `env` output.
func envValue(envOut, name string) string {
	for _, l := range strings.Split(envOut, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && k == name {
			return v
		}
	}
	return ""
}
