package main

// The tools an agent runs, each through cloak against loopback TLS servers:
// to a bound host (the client must trust cloak's CA, and the server must
// get the real value) and to a host passed through untouched (the client
// must still trust the roots it trusted before, here --upstream-ca).

import (
	"fmt"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	boundBase  = "https://api.github.com" // GITHUB_TOKEN's built-in binding
	passedBase = "https://unbound.test"   // no secret is bound to it
	gitFile    = "hello from the test git server"
)

// nodeConnectClient reaches the proxy the way Claude Code does: CONNECT
// with the credentials from https_proxy, then TLS trusting
// NODE_EXTRA_CA_CERTS. Node's https module ignores proxy variables, so a
// Node program that uses a proxy does this or has a library do it.
const nodeConnectClient = `
const http = require('http'), https = require('https'), tls = require('tls');
const target = new URL(process.argv[1]), proxy = new URL(process.env.https_proxy);
const auth = 'Basic ' + Buffer.from(decodeURIComponent(proxy.username) + ':' + decodeURIComponent(proxy.password)).toString('base64');
const where = target.hostname + ':443', headers = {Host: target.hostname};
if (process.argv[2]) headers.Authorization = 'Bearer ' + process.env[process.argv[2]];
http.request({host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: where, headers: {'Proxy-Authorization': auth, Host: where}})
  .on('connect', (res, socket) => {
    if (res.statusCode !== 200) { console.error('CONNECT', res.statusCode); process.exit(2); }
    https.get({host: target.hostname, port: 443, path: target.pathname, headers, createConnection: () => tls.connect({socket, servername: target.hostname})}, (r) => {
      let body = ''; r.on('data', d => body += d); r.on('end', () => { console.log('status', r.statusCode, body.trim()); process.exit(r.statusCode === 200 ? 0 : 1); });
    }).on('error', e => { console.error(e.code || e.message); process.exit(1); });
  })
  .on('error', e => { console.error(e.code || e.message); process.exit(1); })
  .end();
`

// nodeFetchClient uses Node's built-in fetch; with "undici" as third
// argument it first routes it through undici's EnvHttpProxyAgent, which
// reads the proxy variables (Node 20's fetch does not).
const nodeFetchClient = `
if (process.argv[3] === 'undici') {
  const { EnvHttpProxyAgent, setGlobalDispatcher } = require('undici');
  setGlobalDispatcher(new EnvHttpProxyAgent());
}
const headers = process.argv[2] ? {Authorization: 'Bearer ' + process.env[process.argv[2]]} : {};
fetch(process.argv[1], {headers})
  .then(async r => { console.log('status', r.status, (await r.text()).trim()); process.exit(r.ok ? 0 : 1); })
  .catch(e => { console.error('fetch failed:', (e.cause && (e.cause.code || e.cause.message)) || e.message); process.exit(1); });
`

const pythonURLLibClient = `
import os, sys, urllib.request
h = {"Authorization": "Bearer " + os.environ[sys.argv[2]]} if len(sys.argv) > 2 else {}
with urllib.request.urlopen(urllib.request.Request(sys.argv[1], headers=h), timeout=30) as r:
    print("status", r.status, r.read().decode().strip())
`

const pythonRequestsClient = `
import os, sys, requests
h = {"Authorization": "Bearer " + os.environ[sys.argv[2]]} if len(sys.argv) > 2 else {}
r = requests.get(sys.argv[1], headers=h, timeout=30)
r.raise_for_status()
print("status", r.status_code, r.text.strip())
`

// debianPython is the python3 that has Debian's python3-requests; a
// python3 earlier on PATH (pyenv) may not.
func debianPython(t *testing.T) string {
	t.Helper()
	p := "/usr/bin/python3"
	if _, err := os.Stat(p); err != nil {
		need(t, "python3")
		p = "python3"
	}
	if err := exec.Command(p, "-c", "import requests").Run(); err != nil {
		t.Fatalf("%s cannot import requests; .ci/run installs python3-requests (listed in .ci/apt-packages)", p)
	}
	return p
}

// buildGoClient builds testdata/goclient outside cloak (a go build inside
// would fetch modules through the proxy with the session's empty HOME).
func buildGoClient(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "goclient")
	build := exec.Command("go", "build", "-o", out, "./testdata/goclient")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building testdata/goclient: %v\n%s", err, b)
	}
	return out
}

// undiciPath is the node_modules holding undici, installed by
// .ci/install-claude.
func undiciPath(t *testing.T) string {
	t.Helper()
	p, _ := filepath.Abs(filepath.Join(".ci", "node_modules"))
	if _, err := os.Stat(filepath.Join(p, "undici", "package.json")); err != nil {
		t.Fatalf("undici is not installed in %s: run .ci/install-claude", p)
	}
	return p
}

// gitBackend makes a bare repository at root/rel with one commit (hello.txt
// holding gitFile) that accepts pushes, and serves it with git's smart HTTP
// protocol (git http-backend behind net/http/cgi). Callers put their own
// authentication in front.
func gitBackend(t *testing.T, rel string) (root string, backend http.Handler) {
	t.Helper()
	need(t, "git")
	root = t.TempDir()
	bare := filepath.Join(root, rel)
	work := filepath.Join(t.TempDir(), "work")
	gitRun := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t.test",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t.test", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, b)
		}
	}
	gitRun("init", "-q", "--bare", "-b", "main", bare)
	gitRun("-C", bare, "config", "http.receivepack", "true")
	gitRun("init", "-q", "-b", "main", work)
	if err := os.WriteFile(filepath.Join(work, "hello.txt"), []byte(gitFile+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun("-C", work, "add", "hello.txt")
	gitRun("-C", work, "commit", "-q", "-m", "one")
	gitRun("-C", work, "push", "-q", bare, "main")
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatal(err)
	}
	return root, &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		Root: "/",
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
}

// gitCloneHandler serves gitBackend's repository at /repo.git/ and JSON
// elsewhere. On the bound host it asks for the real token, as GitHub would.
func gitCloneHandler(t *testing.T, real string) http.HandlerFunc {
	t.Helper()
	_, backend := gitBackend(t, "repo.git")
	return func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/repo.git/") {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"ok":true}` + "\n"))
			return
		}
		if r.Host == "api.github.com" && r.Header.Get("Authorization") != "Bearer "+real {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "token required", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}
}

func TestClientsTrustTheProxy(t *testing.T) {
	need(t, "curl", "node", "git")
	real := randomReal("ghp_", 36)
	u := newUpstream(t, nil)
	u.handler = gitCloneHandler(t, real)
	python := debianPython(t)
	goClient := buildGoClient(t)
	nodeModules := undiciPath(t)

	// Each client gets a URL and, for the bound host, the name of the
	// variable holding the token it must send.
	clients := []struct {
		name string
		argv func(url, tokenVar string) []string
		path string // appended to the base URL
		want string
	}{
		{"curl", func(url, tv string) []string {
			h := ""
			if tv != "" {
				h = `-H "Authorization: Bearer $` + tv + `"`
			}
			return []string{"sh", "-c", `curl -sS -f ` + h + ` "$0"`, url}
		}, "/data", `{"ok":true}`},
		{"node https (CONNECT)", func(url, tv string) []string { return []string{"node", "-e", nodeConnectClient, url, tv} }, "/data", `status 200 {"ok":true}`},
		{"node fetch (undici EnvHttpProxyAgent)", func(url, tv string) []string {
			return []string{"env", "NODE_PATH=" + nodeModules, "node", "-e", nodeFetchClient, url, tv, "undici"}
		}, "/data", `status 200 {"ok":true}`},
		{"python3 urllib", func(url, tv string) []string {
			return append([]string{python, "-c", pythonURLLibClient, url}, nonEmpty(tv)...)
		}, "/data", `status 200 {"ok":true}`},
		{"python3 requests", func(url, tv string) []string {
			return append([]string{python, "-c", pythonRequestsClient, url}, nonEmpty(tv)...)
		}, "/data", `status 200 {"ok":true}`},
		{"go net/http", func(url, tv string) []string { return append([]string{goClient, url}, nonEmpty(tv)...) }, "/data", `status 200 {"ok":true}`},
		{"git clone (smart HTTP)", func(url, tv string) []string {
			h := ""
			if tv != "" {
				h = `-c http.extraHeader="Authorization: Bearer $` + tv + `"`
			}
			return []string{"sh", "-c", `git ` + h + ` clone -q "$0" "$HOME/clone-$$" && cat "$HOME/clone-$$/hello.txt" && rm -rf "$HOME/clone-$$"`, url}
		}, "/repo.git", gitFile},
	}
	for _, c := range clients {
		for _, bound := range []bool{true, false} {
			name := c.name + "/passed-through"
			base, tokenVar := passedBase, ""
			if bound {
				name, base, tokenVar = c.name+"/bound", boundBase, "GITHUB_TOKEN"
			}
			t.Run(name, func(t *testing.T) {
				u.mu.Lock()
				u.seen = nil
				u.mu.Unlock()
				s := newSession(t, u, map[string]string{"GITHUB_TOKEN": real})
				r := s.run(nil, c.argv(base+c.path, tokenVar)...)
				if r.code != 0 || !strings.Contains(r.stdout, c.want) {
					t.Fatalf("exit %d, want output with %q\nstdout: %s\nstderr: %s", r.code, c.want, r.stdout, r.stderr)
				}
				if r.stderr != "" {
					t.Errorf("cloak printed (a refused request?):\n%s", r.stderr)
				}
				reqs := u.requests()
				if len(reqs) == 0 {
					t.Fatal("the upstream got no request")
				}
				for _, q := range reqs {
					wantHost := strings.TrimPrefix(base, "https://")
					if q.Host != wantHost {
						t.Errorf("%s %s reached the upstream for host %q, want %q", q.Method, q.URI, q.Host, wantHost)
					}
					if bound && q.Header.Get("Authorization") != "Bearer "+real {
						t.Errorf("%s %s on the bound host did not carry the real token", q.Method, q.URI)
					}
					if !bound && q.Header.Get("Authorization") != "" {
						t.Errorf("%s %s on the passed-through host carried an Authorization header", q.Method, q.URI)
					}
				}
				if bound && !s.auditHas(`"host":"api.github.com:443"`, `"injected":["GITHUB_TOKEN"]`, `"decision":"allowed"`) {
					t.Errorf("no audit line for the swap:\n%s", strings.Join(s.auditLines(), "\n"))
				}
				if !bound && !s.auditHas(`"method":"CONNECT"`, `"host":"unbound.test:443"`, `"decision":"passed-through"`) {
					t.Errorf("no audit line for the pass-through:\n%s", strings.Join(s.auditLines(), "\n"))
				}
			})
		}
	}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// Node 20's built-in fetch ignores proxy variables (NODE_USE_ENV_PROXY,
// which cloak sets, is honoured only by newer Node versions): a request
// either goes through the proxy, or fails without reaching any server. It
// never gets to a host some other way.
func TestNodeBuiltInFetchGoesThroughTheProxyOrNowhere(t *testing.T) {
	need(t, "node")
	real := randomReal("ghp_", 36)
	u := newUpstream(t, nil)
	s := newSession(t, u, map[string]string{"GITHUB_TOKEN": real})
	// A .test name, so that on a machine with DNS a direct attempt still
	// reaches nothing.
	flags := append([]string{"--bind", "GITHUB_TOKEN=bound.test"}, u.resolveFlags("bound.test")...)
	r := s.run(flags, "node", "-e", nodeFetchClient, "https://bound.test/data", "GITHUB_TOKEN")
	reqs := u.requests()
	switch {
	case r.code == 0:
		if len(reqs) != 1 || reqs[0].Header.Get("Authorization") != "Bearer "+real || !s.auditHas(`"injected":["GITHUB_TOKEN"]`) {
			t.Fatalf("fetch succeeded, but not through cloak's swap (%d upstream requests)", len(reqs))
		}
		t.Log("this Node's fetch honours the proxy variables")
	case strings.Contains(r.stderr, "fetch failed: ENOTFOUND") || strings.Contains(r.stderr, "fetch failed: EAI_AGAIN"):
		// It tried DNS for the host itself: the proxy was not used.
		if len(reqs) != 0 {
			t.Fatalf("fetch failed, yet the upstream got %d requests", len(reqs))
		}
		if len(s.auditLines()) > 2 { // start and end only
			t.Fatalf("fetch failed, yet the proxy saw it:\n%s", strings.Join(s.auditLines(), "\n"))
		}
	default:
		t.Fatalf("fetch neither used the proxy nor failed on name lookup: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

// Claude Code sends its next request on the connection its last streamed
// answer came on. curl does the same with several URLs: every request after
// a stream must be answered, on the same connection.
func TestConnectionIsReusedAfterAStream(t *testing.T) {
	need(t, "curl")
	u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "event: e\ndata: %d\n\n", i)
			w.(http.Flusher).Flush()
		}
	})
	s, real := anthropicSession(t, u)
	const n = 10
	args := `curl -sS --max-time 20 -H "x-api-key: $ANTHROPIC_API_KEY"`
	for i := range n {
		args += fmt.Sprintf(` -d '{}' https://api.anthropic.com/v1/messages?i=%d`, i)
	}
	r := s.run(nil, "sh", "-c", args+` -w 'connects=%{num_connects} status=%{http_code}\n'`)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if got := strings.Count(r.stdout, "status=200"); got != n {
		t.Errorf("%d of %d requests answered:\n%s", got, n, r.stdout)
	}
	if got := strings.Count(r.stdout, "connects=0"); got != n-1 {
		t.Errorf("curl opened a new connection for %d of %d follow-up requests", n-1-got, n-1)
	}
	for _, q := range u.requests() {
		if q.Header.Get("X-Api-Key") != real {
			t.Errorf("%s did not get the real key", q.URI)
		}
	}
}
