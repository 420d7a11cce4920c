package proxy

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"

	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA signs certificates for tests. The proxy's own CA lives in package
// ca; the proxy package must not import it, so tests carry a minimal one.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	mu   sync.Mutex
	memo map[string]*tls.Certificate
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, memo: map[string]*tls.Certificate{}}
}

func (c *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

func (c *testCA) leaf(host string) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.memo[host]; ok {
		return l, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return nil, err
	}
	l := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	c.memo[host] = l
	return l, nil
}

// Values used across the tests. They are test fixtures, not secrets.
const (
	realKey  = "sk-ant-api03-REALREALREALREALREALREALREALREAL"
	dummyKey = "sk-ant-api03-dummydummydummydummydummydummydu"
	realGH   = "ghp_REALGITHUBTOKENREALGITHUBTOKEN1234"
	dummyGH  = "ghp_dummygithubtokendummygithubtoken12"
)

// seen is what an upstream saw of one request.
type seen struct {
	Host   string
	Path   string
	Header http.Header
	Body   string
}

// world is a proxy in front of a TLS upstream that answers for every host
// name, with api.anthropic.com and api.github.com bound.
type world struct {
	t        testing.TB
	proxy    *Proxy
	upstream *httptest.Server
	proxyCA  *testCA
	audit    *bytes.Buffer
	auditMu  *sync.Mutex
	mu       sync.Mutex
	seen     []seen
	handler  http.HandlerFunc
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func newWorld(t testing.TB, handler http.HandlerFunc, mutate ...func(*Config)) *world {
	t.Helper()
	w := &world{t: t, proxyCA: newTestCA(t), audit: &bytes.Buffer{}, auditMu: &sync.Mutex{}, handler: handler}
	upCA := newTestCA(t)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body := new(bytes.Buffer)
		_, _ = body.ReadFrom(r.Body)
		w.mu.Lock()
		w.seen = append(w.seen, seen{Host: r.Host, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: body.String()})
		w.mu.Unlock()
		if w.handler != nil {
			w.handler(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(map[string]string{"ok": "yes"})
	}))
	up.TLS = &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) { return upCA.leaf(h.ServerName) }}
	up.StartTLS()
	t.Cleanup(up.Close)
	w.upstream = up
	addr := up.Listener.Addr().String()

	anthropic, _ := ParseHostPattern("api.anthropic.com")
	github, _ := ParseHostPattern("api.github.com")
	cfg := Config{
		Secrets: []Secret{
			{Name: "ANTHROPIC_API_KEY", Dummy: dummyKey, Real: realKey, Rules: []Rule{{Hosts: []HostPattern{anthropic}}}},
			{Name: "GITHUB_TOKEN", Dummy: dummyGH, Real: realGH, Rules: []Rule{{Hosts: []HostPattern{github}}}},
		},
		Leaf:          w.proxyCA.leaf,
		UpstreamRoots: upCA.pool(),
		Resolve: map[string]string{
			"api.anthropic.com:443": addr,
			"api.github.com:443":    addr,
			"unbound.test:443":      addr,
			"api.anthropic.com:80":  addr,
			"plain.test:80":         addr,
		},
		Audit:   lockedWriter{mu: w.auditMu, b: w.audit},
		Session: "test",
	}
	for _, m := range mutate {
		m(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	w.proxy = p
	return w
}

// client goes through the proxy with its credentials and trusts only the
// proxy's CA.
func (w *world) client() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:           http.ProxyURL(w.proxy.URL()),
			TLSClientConfig: &tls.Config{RootCAs: w.proxyCA.pool()},
		},
		Timeout: 20 * time.Second,
	}
}

func (w *world) seenRequests() []seen {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]seen(nil), w.seen...)
}

// auditLines parses the audit log written so far.
func (w *world) auditLines() []map[string]any {
	w.auditMu.Lock()
	defer w.auditMu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(w.audit.String()), "\n") {
		if line == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			w.t.Fatalf("audit line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

// waitAudit waits until the audit log has a line with this decision.
func (w *world) waitAudit(decision string) map[string]any {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range w.auditLines() {
			if l["decision"] == decision {
				return l
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.t.Fatalf("no audit line with decision %q in:\n%s", decision, w.audit.String())
	return nil
}

// assertNoReal fails if a real value is anywhere in the audit log.
func (w *world) assertNoReal() {
	w.auditMu.Lock()
	defer w.auditMu.Unlock()
	for _, r := range []string{realKey, realGH} {
		if strings.Contains(w.audit.String(), r) {
			w.t.Fatalf("audit log holds a real value")
		}
	}
}

// rawConnect opens a TCP connection to the proxy and sends a CONNECT.
func (w *world) rawConnect(target, auth string) (net.Conn, *bufio.Reader, *http.Response) {
	w.t.Helper()
	c, err := net.Dial("tcp", w.proxy.Addr())
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { c.Close() })
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if auth != "" {
		req += "Proxy-Authorization: " + auth + "\r\n"
	}
	if _, err := c.Write([]byte(req + "\r\n")); err != nil {
		w.t.Fatal(err)
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		w.t.Fatal(err)
	}
	return c, br, res
}

func (w *world) proxyAuth() string {
	u := w.proxy.URL()
	pw, _ := u.User.Password()
	return "Basic " + basic(u.User.Username(), pw)
}

func basic(user, pass string) string {
	return base64Std(user + ":" + pass)
}

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

type netDialer struct{}

func (netDialer) dial(addr string) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, time.Second)
}

func itoa(n int) string { return strconv.Itoa(n) }

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
