package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// upstreamSaw is one request as the upstream received it, with the TLS
// server name cloak (or the child, through a plain tunnel) asked for.
type upstreamSaw struct {
	sni, host, method, uri string
	header                 http.Header
	body                   string
}

func (s upstreamSaw) holds(v string) bool {
	if strings.Contains(s.uri, v) || strings.Contains(s.body, v) {
		return true
	}
	for _, vs := range s.header {
		for _, x := range vs {
			if strings.Contains(x, v) {
				return true
			}
		}
	}
	return false
}

// smuggleCase is one hand-written attempt to get a real value somewhere it
// is not bound to, or past cloak's checks.
type smuggleCase struct {
	name string
	// outer is sent to the proxy as is, without CONNECT; or else connect
	// is the CONNECT target and inner the request sent inside the TLS
	// tunnel with server name sni.
	outer, connect, sni, inner string
	passThrough                bool // the tunnel is not decrypted: TLS ends at the upstream
	status                     int  // what the child gets; 0: the connection closes unanswered
	seen                       int  // requests the upstream gets
	real                       bool // the upstream gets the real value (at the bound host)
}

const lookAlike = "\u0430pi.anthropic.com" // Cyrillic а

// TestSmugglingAndParserTricks: each trick is refused, or normalised so that
// the real value still goes only to api.anthropic.com:443, the host it is
// bound to.
func TestSmugglingAndParserTricks(t *testing.T) {
	D := dummyKey
	get := func(host string, extra ...string) string {
		return "GET /v1/models HTTP/1.1\r\nHost: " + host + "\r\nx-api-key: " + D + "\r\n" + strings.Join(extra, "") + "\r\n"
	}
	const api = "api.anthropic.com"
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: evil.test\r\nx-api-key: " + D + "\r\n\r\n"
	chunk := func(s string) string { return strconv.FormatInt(int64(len(s)), 16) + "\r\n" + s + "\r\n0\r\n\r\n" }
	puny, err := NormalizeHost(lookAlike)
	if err != nil {
		t.Fatal(err)
	}
	cases := []smuggleCase{
		// Framing: Go's parser drops Content-Length when chunked is set
		// (RFC 9112 6.3) and refuses the rest; the smuggled request stays
		// body bytes of a request to the bound host.
		{name: "content-length and chunked together", connect: api + ":443", sni: api,
			inner:  "POST /v1/messages HTTP/1.1\r\nHost: " + api + "\r\nx-api-key: " + D + "\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(smuggled),
			status: 200, seen: 1, real: true},
		{name: "chunked then content-length", connect: api + ":443", sni: api,
			inner:  "POST /v1/messages HTTP/1.1\r\nHost: " + api + "\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + chunk(smuggled),
			status: 200, seen: 1},
		{name: "content-length shorter than the body", connect: api + ":443", sni: api,
			inner:  "POST /v1/messages HTTP/1.1\r\nHost: " + api + "\r\nContent-Length: 0\r\n\r\n" + smuggled,
			status: 200, seen: 1},
		{name: "two content-lengths", connect: api + ":443", sni: api,
			inner: "POST /v1/messages HTTP/1.1\r\nHost: " + api + "\r\nx-api-key: " + D + "\r\nContent-Length: 0\r\nContent-Length: 60\r\n\r\n" + smuggled},
		{name: "transfer-encoding identity", connect: api + ":443", sni: api,
			inner: "POST /v1/messages HTTP/1.1\r\nHost: " + api + "\r\nx-api-key: " + D + "\r\nTransfer-Encoding: identity\r\nContent-Length: 60\r\n\r\n" + smuggled},
		{name: "transfer-encoding chunked twice", connect: api + ":443", sni: api,
			inner: "POST /v1/messages HTTP/1.1\r\nHost: " + api + "\r\nx-api-key: " + D + "\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(smuggled)},
		{name: "transfer-encoding with a space before the colon", connect: api + ":443", sni: api,
			inner: "POST /v1/messages HTTP/1.1\r\nHost: " + api + "\r\nx-api-key: " + D + "\r\nTransfer-Encoding : chunked\r\n\r\n" + chunk(smuggled), status: 400},

		// Which host: the tunnel's, whatever the request says.
		{name: "two Host headers", connect: api + ":443", sni: api, inner: get(api, "Host: evil.test\r\n")},
		{name: "absolute-form URI naming another host", connect: api + ":443", sni: api,
			inner: "GET https://evil.test/v1/models HTTP/1.1\r\nHost: " + api + "\r\nx-api-key: " + D + "\r\n\r\n", status: 403},
		{name: "absolute-form URI with the bound host as userinfo", connect: api + ":443", sni: api,
			inner: "GET https://" + api + "@evil.test/v1/models HTTP/1.1\r\nHost: " + api + "\r\nx-api-key: " + D + "\r\n\r\n", status: 403},
		{name: "absolute-form URI naming the tunnel's host", connect: api + ":443", sni: api,
			inner: "GET http://" + api + "/v1/models HTTP/1.1\r\nHost: evil.test\r\nx-api-key: " + D + "\r\n\r\n", status: 200, seen: 1, real: true},
		{name: "Host upper case with a trailing dot", connect: api + ":443", sni: api, inner: get("API.ANTHROPIC.COM."), status: 200, seen: 1, real: true},
		{name: "Host a look-alike (Cyrillic a)", connect: api + ":443", sni: api, inner: get(lookAlike), status: 403},
		{name: "Host the look-alike's punycode", connect: api + ":443", sni: api, inner: get(puny), status: 403},
		{name: "Host in fullwidth letters, which IDNA maps to the bound host", connect: api + ":443", sni: api,
			inner: get("\uff41pi.anthropic.com"), status: 200, seen: 1, real: true},
		{name: "Host with the bound host as a prefix", connect: api + ":443", sni: api, inner: get(api + ".evil.test"), status: 403},
		{name: "Host with userinfo", connect: api + ":443", sni: api, inner: get("evil.test@" + api), status: 403},
		{name: "Host very long", connect: api + ":443", sni: api, inner: get(strings.Repeat("a", 100000) + ".evil.test"), status: 403},
		{name: "no Host in HTTP/1.0", connect: api + ":443", sni: api,
			inner: "GET /v1/models HTTP/1.0\r\nx-api-key: " + D + "\r\n\r\n", status: 403},
		{name: "HTTP/1.0 with Host", connect: api + ":443", sni: api,
			inner: "GET /v1/models HTTP/1.0\r\nHost: " + api + "\r\nx-api-key: " + D + "\r\n\r\n", status: 200, seen: 1, real: true},
		{name: "very long header before the key", connect: api + ":443", sni: api,
			inner: get(api, "x-pad: "+strings.Repeat("p", 64<<10)+"\r\n"), status: 200, seen: 1, real: true},
		// Go joins an obsolete folded line to the one before (RFC 9112 5.2).
		{name: "folded header line", connect: api + ":443", sni: api,
			inner:  "GET /v1/models HTTP/1.1\r\nHost: " + api + "\r\nx-note: a\r\n Host: evil.test\r\nx-api-key: " + D + "\r\n\r\n",
			status: 200, seen: 1, real: true},

		// Request lines that parsers disagree on are refused.
		{name: "request line with a fourth word", connect: api + ":443", sni: api,
			inner: "GET /v1/models HTTP/1.1 evil.test\r\nHost: " + api + "\r\nx-api-key: " + D + "\r\n\r\n"},
		{name: "request line with a tab", connect: api + ":443", sni: api,
			inner: "GET\t/v1/models HTTP/1.1\r\nHost: " + api + "\r\nx-api-key: " + D + "\r\n\r\n"},
		{name: "request line with a space in the target", connect: api + ":443", sni: api,
			inner: "GET /v1/models evil HTTP/1.1\r\nHost: " + api + "\r\nx-api-key: " + D + "\r\n\r\n"},
		{name: "bare LF line ends", connect: api + ":443", sni: api,
			inner: "GET /v1/models HTTP/1.1\nHost: " + api + "\nx-api-key: " + D + "\n\n", status: 200, seen: 1, real: true},

		// TLS: the server name must be the CONNECT host (or absent).
		{name: "no server name", connect: api + ":443", sni: "", inner: get(api), status: 200, seen: 1, real: true},

		// CONNECT targets.
		{name: "CONNECT to an IP literal is not decrypted", connect: "127.0.0.1:443", sni: api, passThrough: true, inner: get(api), status: 200, seen: 1},
		{name: "CONNECT to an IPv6 literal is not decrypted", connect: "[::1]:443", sni: api, passThrough: true, inner: get(api), status: 200, seen: 1},
		{name: "CONNECT to the bound host on another port", connect: api + ":8443", sni: api, inner: get(api), status: 403},
		{name: "CONNECT upper case with a trailing dot", connect: "API.Anthropic.COM.:443", sni: api, inner: get(api), status: 200, seen: 1, real: true},
		{name: "CONNECT without a port", connect: api, sni: api, inner: get(api), status: 200, seen: 1, real: true},
		{name: "CONNECT to a look-alike is not decrypted", connect: lookAlike + ":443", sni: api, passThrough: true, inner: get(api), status: 200, seen: 1},
		{name: "CONNECT with the bound host as userinfo", connect: api + ":443@evil.test:443", status: 400},
		{name: "CONNECT with a path", connect: api + ":443/v1", status: 400},
		{name: "CONNECT inside a decrypted tunnel", connect: api + ":443", sni: api,
			inner: "CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.github.com:443\r\nPROXY-AUTH\r\n\r\n", status: 400},
		{name: "origin-form request to the proxy", outer: "GET /v1/models HTTP/1.1\r\nHost: plain.test\r\nPROXY-AUTH\r\n\r\n", status: 400},
		{name: "lowercase connect", outer: "connect " + api + ":443 HTTP/1.1\r\nHost: " + api + ":443\r\nPROXY-AUTH\r\n\r\n", status: 400},
		{name: "plain HTTP to the bound host", outer: "GET http://" + api + "/v1/models HTTP/1.1\r\nHost: " + api + "\r\nPROXY-AUTH\r\nx-api-key: " + D + "\r\n\r\n", status: 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var saw []upstreamSaw
			w := newWorld(t, func(rw http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				saw = append(saw, upstreamSaw{sni: r.TLS.ServerName, host: r.Host, method: r.Method, uri: r.RequestURI, header: r.Header.Clone(), body: string(body)})
				mu.Unlock()
				io.WriteString(rw, "ok\n")
			}, func(c *Config) {
				up := c.Resolve["api.anthropic.com:443"]
				for _, k := range []string{"127.0.0.1:443", "[::1]:443", "api.anthropic.com:8443", puny + ":443", "evil.test:443"} {
					c.Resolve[k] = up
				}
			})
			status, got := w.smuggle(tc)
			if status != tc.status {
				t.Errorf("child got status %d, want %d (answer %q)", status, tc.status, cut(got))
			}
			if tc.status >= 400 && !strings.HasPrefix(got, "cloak: ") {
				t.Errorf("the %d did not come from cloak: %q", status, cut(got))
			}
			if strings.Contains(got, realKey) {
				t.Error("the child's answer holds the real value")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(saw) != tc.seen {
				t.Errorf("upstream saw %d requests, want %d: %+v", len(saw), tc.seen, saw)
			}
			gotReal := false
			for _, s := range saw {
				if !s.holds(realKey) {
					continue
				}
				gotReal = true
				if s.sni != api || s.host != api || s.uri == "/smuggled" {
					t.Errorf("the real value went to server name %q, Host %q, %s", s.sni, cut(s.host), s.uri)
				}
			}
			if gotReal != tc.real {
				t.Errorf("upstream got the real value: %v, want %v", gotReal, tc.real)
			}
			w.assertNoReal()
			for _, l := range w.auditLines() {
				if why, _ := l["reason"].(string); len(why) > 400 {
					t.Errorf("audit reason of %d bytes: a hostile request can flood the log", len(why))
				}
			}
		})
	}
}

// smuggle plays one case and returns the status the child got (0 when the
// connection closed without an answer) and the answer's body.
func (w *world) smuggle(tc smuggleCase) (int, string) {
	t := w.t
	t.Helper()
	c, err := net.Dial("tcp", w.proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	auth := "Proxy-Authorization: " + w.proxyAuth()
	if tc.outer != "" {
		if _, err := io.WriteString(c, strings.Replace(tc.outer, "PROXY-AUTH", auth, 1)); err != nil {
			t.Fatal(err)
		}
		return readAnswer(t, bufio.NewReader(c), "GET")
	}
	if _, err := io.WriteString(c, "CONNECT "+tc.connect+" HTTP/1.1\r\nHost: "+tc.connect+"\r\n"+auth+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	status, body := readAnswer(t, br, http.MethodConnect)
	if status != 200 || tc.inner == "" {
		return status, body
	}
	conf := &tls.Config{ServerName: tc.sni, RootCAs: w.proxyCA.pool()}
	if tc.passThrough || tc.sni == "" {
		conf.InsecureSkipVerify = true
	}
	tc2 := tls.Client(&prefixConn{Conn: c, r: br}, conf)
	if err := tc2.Handshake(); err != nil {
		t.Fatalf("TLS through the tunnel: %v", err)
	}
	if _, err := io.WriteString(tc2, strings.Replace(tc.inner, "PROXY-AUTH", auth, 1)); err != nil {
		t.Fatal(err)
	}
	method, _, _ := strings.Cut(tc.inner, " ")
	return readAnswer(t, bufio.NewReader(tc2), method)
}

// readAnswer reads one response; a connection closed without one is 0.
func readAnswer(t testing.TB, br *bufio.Reader, method string) (int, string) {
	t.Helper()
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("no answer and no close within the deadline: %v", err)
		}
		return 0, ""
	}
	if method == http.MethodConnect && res.StatusCode == 200 {
		return 200, ""
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res.StatusCode, string(body)
}

// prefixConn reads what a bufio.Reader has already taken off the
// connection before reading the connection itself.
type prefixConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *prefixConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func cut(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}
