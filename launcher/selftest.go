package launcher

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/cloak-dev/cloak/ca"
	"github.com/cloak-dev/cloak/proxy"
	"github.com/cloak-dev/cloak/scrub"
)

// The trust self-test runs each installed client, with the environment a
// cloak run would give it, through a throwaway proxy to a throwaway HTTPS
// server on loopback: once to a host a secret is bound to (the client must
// trust cloak's CA, and the server must see the real value) and once to a
// host passed through untouched (the client must still trust the roots it
// trusted before).

const (
	selfTestBound  = "bound.cloak-doctor.test"
	selfTestPassed = "passed.cloak-doctor.test"
	selfTestOK     = "cloak-doctor-ok"
	selfTestSecret = "CLOAK_DOCTOR_TOKEN"
	selfTestTime   = 30 * time.Second
)

// TrustResult is one client's outcome.
type TrustResult struct {
	Client    string
	Installed bool
	Bound     error // nil: worked through the proxy to a bound host
	Passed    error // nil: worked through the proxy to a passed-through host
}

// trustClient is one client the self-test drives: a command line for a URL
// that sends "Authorization: Bearer TOKEN" and prints the response body.
type trustClient struct {
	name   string
	needs  string   // the command that must be on PATH
	probe  []string // optional: a command that must succeed (a library is there)
	argv   func(url, token string) []string
	answer string // what the output must hold; default selfTestOK
}

// nodeConnect is a Node client that uses the proxy as Claude Code does:
// CONNECT through https_proxy with the credentials in its URL, then TLS
// trusting NODE_EXTRA_CA_CERTS. Node's own https module ignores proxy
// variables, so every Node program that reaches a proxy does something
// like this (or uses a library that does).
const nodeConnect = `
const http = require('http'), https = require('https'), tls = require('tls');
const target = new URL(process.argv[1]), proxy = new URL(process.env.https_proxy);
const auth = 'Basic ' + Buffer.from(decodeURIComponent(proxy.username) + ':' + decodeURIComponent(proxy.password)).toString('base64');
const where = target.hostname + ':' + (target.port || 443);
http.request({host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: where, headers: {'Proxy-Authorization': auth, Host: where}})
  .on('connect', (res, socket) => {
    if (res.statusCode !== 200) { console.error('proxy answered CONNECT with', res.statusCode); process.exit(2); }
    https.get({host: target.hostname, port: 443, path: target.pathname, headers: {Authorization: 'Bearer ' + process.argv[2]},
      createConnection: () => tls.connect({socket, servername: target.hostname})}, (r) => {
        let body = ''; r.on('data', d => body += d); r.on('end', () => { console.log(body.trim()); process.exit(r.statusCode === 200 ? 0 : 1); });
    }).on('error', e => { console.error(e.code || e.message); process.exit(1); });
  })
  .on('error', e => { console.error(e.code || e.message); process.exit(1); })
  .end();
`

const nodeFetch = `
fetch(process.argv[1], {headers: {Authorization: 'Bearer ' + process.argv[2]}})
  .then(async r => { console.log((await r.text()).trim()); process.exit(r.ok ? 0 : 1); })
  .catch(e => { console.error((e.cause && e.cause.code) || e.message); process.exit(1); });
`

const pythonURLLib = `
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
print(urllib.request.urlopen(req, timeout=20).read().decode().strip())
`

const pythonRequests = `
import sys, requests
r = requests.get(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]}, timeout=20)
r.raise_for_status()
print(r.text.strip())
`

var trustClients = []trustClient{
	{name: "curl", needs: "curl", argv: func(u, tok string) []string {
		return []string{"curl", "-sS", "-f", "--max-time", "20", "-H", "Authorization: Bearer " + tok, u}
	}},
	{name: "node (https via CONNECT)", needs: "node", argv: func(u, tok string) []string {
		return []string{"node", "-e", nodeConnect, u, tok}
	}},
	{name: "node (built-in fetch)", needs: "node", argv: func(u, tok string) []string {
		return []string{"node", "-e", nodeFetch, u, tok}
	}},
	{name: "python3 (urllib)", needs: "python3", argv: func(u, tok string) []string {
		return []string{"python3", "-c", pythonURLLib, u, tok}
	}},
	{name: "python3 (requests)", needs: "python3", probe: []string{"python3", "-c", "import requests"}, argv: func(u, tok string) []string {
		return []string{"python3", "-c", pythonRequests, u, tok}
	}},
	{name: "git", needs: "git", answer: "refs/heads/main", argv: func(u, tok string) []string {
		return []string{"git", "-c", "http.extraHeader=Authorization: Bearer " + tok, "ls-remote", u + "repo.git"}
	}},
}

// TrustSelfTest runs every installed client through a throwaway proxy.
// environ is the environment a cloak run would start from.
func TrustSelfTest(environ []string) ([]TrustResult, error) {
	real, err := randomToken()
	if err != nil {
		return nil, err
	}
	dummy, err := scrub.Dummy(real, "")
	if err != nil {
		return nil, fmt.Errorf("making the self-test's dummy: %w", err)
	}
	target, err := startSelfTestTarget(real)
	if err != nil {
		return nil, err
	}
	defer target.close()

	authority, err := ca.New("cloak doctor")
	if err != nil {
		return nil, fmt.Errorf("making the self-test CA: %w", err)
	}
	dir, err := os.MkdirTemp("", fmt.Sprintf("cloak-%d-", os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("making the self-test's temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	// The target's CA stands in for the public roots a passed-through host
	// is signed by: added the way --upstream-ca adds roots.
	extraPath, bundlePath, err := writeTrust(dir, authority, target.caPEM, environ)
	if err != nil {
		return nil, err
	}
	bound, err := proxy.ParseHostPattern(selfTestBound)
	if err != nil {
		return nil, err
	}
	rules := map[string][]proxy.Rule{selfTestSecret: {{Hosts: []proxy.HostPattern{bound}}}}
	secrets := []scrub.Secret{{Name: selfTestSecret, Real: real, Dummy: dummy}}
	px, err := proxy.New(proxy.Config{
		Secrets:       proxySecrets(secrets, rules),
		Leaf:          authority.Leaf,
		UpstreamRoots: target.roots,
		Resolve:       map[string]string{selfTestBound + ":443": target.addr, selfTestPassed + ":443": target.addr},
		Session:       "doctor",
	})
	if err != nil {
		return nil, fmt.Errorf("starting the self-test proxy: %w", err)
	}
	defer px.Close()
	env, err := childEnv(childEnvInput{
		parent: environ, secrets: secrets, proxyURL: px.URL().String(),
		extraPath: extraPath, bundlePath: bundlePath, session: "doctor", rules: rules, warn: func(string) {},
	})
	if err != nil {
		return nil, err
	}
	// Only loopback is reachable directly; a client that ignores the
	// proxy must fail, not find the test hosts some other way.
	env = scrub.Set(env, "GIT_TERMINAL_PROMPT", "0")

	var out []TrustResult
	for _, c := range trustClients {
		r := TrustResult{Client: c.name}
		if _, err := exec.LookPath(c.needs); err == nil && (c.probe == nil || quiet(env, c.probe) == nil) {
			r.Installed = true
			r.Bound = runTrustClient(env, c, "https://"+selfTestBound+"/", dummy, real)
			r.Passed = runTrustClient(env, c, "https://"+selfTestPassed+"/", dummy, real)
		}
		out = append(out, r)
	}
	return out, nil
}

// runTrustClient runs one client and explains a failure in a few words.
func runTrustClient(env []string, c trustClient, url, dummy, real string) error {
	ctx, cancel := context.WithTimeout(context.Background(), selfTestTime)
	defer cancel()
	argv := c.argv(url, dummy)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	want := c.answer
	if want == "" {
		want = selfTestOK
	}
	if err == nil && strings.Contains(stdout.String(), want) {
		return nil
	}
	if ctx.Err() != nil {
		return errors.New("timed out")
	}
	msg := lastLine(stderr.String())
	if msg == "" {
		msg = lastLine(stdout.String())
	}
	if msg == "" && err != nil {
		msg = err.Error()
	}
	// The target never echoes what it got, but a client's message must
	// not become the way a real value gets printed.
	return errors.New(strings.ReplaceAll(msg, real, "<redacted>"))
}

func quiet(env, argv []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), selfTestTime)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	return cmd.Run()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	if len(l) > 100 {
		l = l[:100] + "..."
	}
	return l
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making the self-test's token: %w", err)
	}
	return "cloak-doctor-" + hex.EncodeToString(b), nil
}

// selfTestTarget is the HTTPS server the clients reach through the proxy.
type selfTestTarget struct {
	addr  string
	caPEM []byte
	roots *x509.CertPool
	srv   *http.Server
}

func startSelfTestTarget(real string) (*selfTestTarget, error) {
	authority, err := ca.New("cloak doctor target")
	if err != nil {
		return nil, fmt.Errorf("making the self-test target's CA: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the self-test target: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(authority.Certificate())
	t := &selfTestTarget{addr: ln.Addr().String(), caPEM: authority.PEM(), roots: roots}
	t.srv = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.serve(w, r, real) }),
		ReadHeaderTimeout: selfTestTime,
		ErrorLog:          log.New(io.Discard, "", 0), // TLS errors are the clients' to report
		TLSConfig: &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return authority.Leaf(h.ServerName)
		}},
	}
	go func() { _ = t.srv.ServeTLS(ln, "", "") }()
	return t, nil
}

// serve answers: on the bound host only when the real value arrived (the
// proxy swapped the dummy), on the passed-through host always. git gets a
// dumb-protocol ref list.
func (t *selfTestTarget) serve(w http.ResponseWriter, r *http.Request, real string) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	if host == selfTestBound && r.Header.Get("Authorization") != "Bearer "+real {
		http.Error(w, "the proxy did not put the real value in place of the dummy", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	if strings.HasSuffix(r.URL.Path, "/info/refs") {
		io.WriteString(w, "1111111111111111111111111111111111111111\trefs/heads/main\n")
		return
	}
	if strings.Contains(r.URL.Path, ".git/") {
		http.NotFound(w, r)
		return
	}
	io.WriteString(w, selfTestOK+"\n")
}

func (t *selfTestTarget) close() { _ = t.srv.Close() }
