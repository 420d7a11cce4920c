package main

import (
	"crypto/tls"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestCurlSwapsQueryBodyAndBasic: with real curl as the child, a secret
// bound with --bind reaches the upstream in a query value and a form body,
// GITHUB_TOKEN's preset lets it go as Basic credentials, and the upstream's
// echo of each real value reaches the child as the dummy.
func TestCurlSwapsQueryBodyAndBasic(t *testing.T) {
	need(t, "curl")
	u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		// Echo what arrived, real values included: cloak must redact.
		user, pass, _ := r.BasicAuth()
		io.WriteString(w, "query="+r.URL.Query().Get("key")+" basic="+user+":"+pass+"\n")
	})
	service := randomReal("svc_", 40)
	gh := randomReal("ghp_", 36)
	s := newSession(t, u, map[string]string{"SERVICE_KEY": service, "GITHUB_TOKEN": gh})
	r := s.run([]string{"--bind", "SERVICE_KEY=api.github.com"}, "sh", "-c", `
		set -e
		echo "dummies $SERVICE_KEY $GITHUB_TOKEN"
		curl -sS -f "https://api.github.com/search?key=$SERVICE_KEY&x=1"
		curl -sS -f -d "key=$SERVICE_KEY&note=hi" https://api.github.com/form
		curl -sS -f -u "x-access-token:$GITHUB_TOKEN" https://api.github.com/basic`)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var dummySvc, dummyGH string
	for _, l := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "dummies" {
			dummySvc, dummyGH = f[1], f[2]
		}
	}
	if len(dummySvc) != len(service) || len(dummyGH) != len(gh) {
		t.Fatalf("no dummies in the child's output: %q", r.stdout)
	}
	reqs := u.requests()
	if len(reqs) != 3 {
		t.Fatalf("upstream saw %d requests, want 3", len(reqs))
	}
	if reqs[0].URI != "/search?key="+service+"&x=1" {
		t.Errorf("query: upstream saw %q", strings.ReplaceAll(reqs[0].URI, service, "<real>"))
	}
	if reqs[1].Body != "key="+service+"&note=hi" {
		t.Errorf("body: upstream saw %q", strings.ReplaceAll(reqs[1].Body, service, "<real>"))
	}
	if got := reqs[2].Header.Get("Authorization"); got != "Basic "+base64.StdEncoding.EncodeToString([]byte("x-access-token:"+gh)) {
		t.Errorf("basic: upstream did not get the real token as Basic credentials")
	}
	// The echoes came back as dummies (run already checked that no real
	// value is in the output).
	for _, want := range []string{"query=" + dummySvc, "basic=x-access-token:" + dummyGH} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("child output lacks %q: %q", want, r.stdout)
		}
	}
	if !s.auditHas(`"injected":["GITHUB_TOKEN"]`, `"path":"/basic"`) {
		t.Errorf("basic swap not in the audit log:\n%s", strings.Join(s.auditLines(), "\n"))
	}
}

// basicGitServer is git's smart HTTP protocol over TLS (git http-backend under
// net/http/cgi), demanding Basic credentials with the real token, and
// recording every credential it was offered.
type basicGitServer struct {
	root    string
	mu      sync.Mutex
	offered []string // decoded Basic credentials, as sent
}

func newBasicGitServer(t *testing.T, token string) (*basicGitServer, *upstream) {
	t.Helper()
	root, backend := gitBackend(t, filepath.Join("o", "r.git"))
	g := &basicGitServer{root: root}
	u := &upstream{t: t, ca: newUpstreamCA(t)}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if ok {
			g.mu.Lock()
			g.offered = append(g.offered, user+":"+pass)
			g.mu.Unlock()
		}
		if !ok || pass != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	u.srv.TLS = &tls.Config{GetCertificate: u.ca.leaf}
	u.srv.StartTLS()
	t.Cleanup(u.srv.Close)
	return g, u
}

// TestGitCloneAndPushOverHTTPS runs the real git through cloak against a
// smart HTTP server that takes only the real token: the child has the
// dummy in the remote URL, clone and push both work, and the server never
// sees the dummy.
func TestGitCloneAndPushOverHTTPS(t *testing.T) {
	token := randomReal("ghp_", 36)
	g, u := newBasicGitServer(t, token)
	s := newSession(t, u, map[string]string{"GITHUB_TOKEN": token})
	s.extraEnv = []string{"GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1"}
	r := s.run([]string{"--resolve", "github.com:443:127.0.0.1:" + u.port()}, "sh", "-c", `
		set -e
		echo "dummy $GITHUB_TOKEN"
		git clone -q "https://x-access-token:$GITHUB_TOKEN@github.com/o/r.git" work
		cd work
		echo hello > hello.txt
		git add hello.txt
		git -c user.name=agent -c user.email=agent@example.test commit -q -m "from the child"
		git push -q origin HEAD:main
		echo pushed`)
	if r.code != 0 || !strings.Contains(r.stdout, "pushed") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var dummy string
	for _, l := range strings.Split(r.stdout, "\n") {
		if d, ok := strings.CutPrefix(l, "dummy "); ok {
			dummy = d
		}
	}
	if len(dummy) != len(token) || dummy == token {
		t.Fatalf("no dummy in the child's output: %q", r.stdout)
	}
	out, err := exec.Command("git", "-C", filepath.Join(g.root, "o", "r.git"), "log", "-1", "--format=%s", "main").Output()
	if err != nil || strings.TrimSpace(string(out)) != "from the child" {
		t.Fatalf("the push did not land: %q %v", out, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.offered) == 0 {
		t.Fatal("the server was never offered credentials")
	}
	for _, c := range g.offered {
		if strings.Contains(c, dummy) {
			t.Fatal("the git server saw the dummy")
		}
		if c != "x-access-token:"+token {
			t.Errorf("the git server was offered unexpected credentials")
		}
	}
	if !s.auditHas(`"host":"github.com:443"`, `"injected":["GITHUB_TOKEN"]`, `"path":"/o/r.git/git-receive-pack"`) {
		t.Errorf("push not in the audit log:\n%s", strings.Join(s.auditLines(), "\n"))
	}
}
