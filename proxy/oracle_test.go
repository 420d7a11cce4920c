package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// recoverPrefix plays the attacker: it asks for responses that end with a
// guess and watches whether the echo comes back changed, which would mean
// the guess starts a real value. It returns what it recovered.
func recoverPrefix(t *testing.T, c *http.Client, known, full string, url func(guess string) string, echoed func(*http.Response, string) bool) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for len(known) < len(full) {
		found := false
		for _, ch := range alphabet {
			guess := known + string(ch)
			res, err := c.Get(url(guess))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if !echoed(res, guess) {
				known, found = guess, true
				break
			}
		}
		if !found {
			return known
		}
	}
	return known
}

// TestRedactionIsNoPrefixOracle: a response that ends with text the child
// chose (a redirect keeping the query) must not change when that text
// starts a real value, or the child reads the value a character at a time.
func TestRedactionIsNoPrefixOracle(t *testing.T) {
	w := newWorld(t, func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Location", "/login?"+r.URL.RawQuery)
		rw.WriteHeader(http.StatusFound)
	})
	c := w.client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	got := recoverPrefix(t, c, "sk-ant-api03-", realKey,
		func(g string) string { return "https://api.anthropic.com/?q=" + g },
		func(res *http.Response, g string) bool { return res.Header.Get("Location") == "/login?q="+g })
	if got != "sk-ant-api03-" {
		t.Fatalf("the child learnt %q of the real key", got)
	}
}

func TestRedactionIsNoPrefixOracleOverPlainHTTP(t *testing.T) {
	redir := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		http.Redirect(rw, r, "https://example.test"+r.URL.RequestURI(), http.StatusMovedPermanently)
	}))
	defer redir.Close()
	w := newWorld(t, nil, func(c *Config) { c.Resolve["example.test:80"] = redir.Listener.Addr().String() })
	c := w.client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	got := recoverPrefix(t, c, "ghp_", realGH,
		func(g string) string { return "http://example.test/" + g },
		func(res *http.Response, g string) bool {
			return res.Header.Get("Location") == "https://example.test/"+g
		})
	if got != "ghp_" {
		t.Fatalf("the child learnt %q of the real token", got)
	}
}

// TestLongCutOffRealValueIsStillRedacted: a real value cut short at the
// end of a response, long enough to be more than a guess, still reaches
// the child as the dummy's start.
func TestLongCutOffRealValueIsStillRedacted(t *testing.T) {
	cut := realKey[:len("sk-ant-api03-")+tailMin+2]
	w := newWorld(t, func(rw http.ResponseWriter, r *http.Request) {
		io.WriteString(rw, "token: "+cut)
	})
	res, err := w.client().Get("https://api.anthropic.com/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "token: "+dummyKey[:len(cut)] {
		t.Fatalf("child got %q", b)
	}
}

// TestUnaskedProtocolSwitchIsRefused: an upstream that answers 101 to a
// plain request would hand the child raw, unredacted bytes.
func TestUnaskedProtocolSwitchIsRefused(t *testing.T) {
	w := newWorld(t, func(rw http.ResponseWriter, r *http.Request) {
		c, brw, _ := rw.(http.Hijacker).Hijack()
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nBODY:" + realKey + "\n")
		brw.Flush()
		io.Copy(io.Discard, brw) // until the proxy lets go
	})
	c, br, res := w.rawConnect("api.anthropic.com:443", w.proxyAuth())
	if res.StatusCode != 200 {
		t.Fatal(res.Status)
	}
	tc := tls.Client(&bufConn{Conn: c, r: br}, &tls.Config{ServerName: "api.anthropic.com", RootCAs: w.proxyCA.pool()})
	io.WriteString(tc, "GET / HTTP/1.1\r\nHost: api.anthropic.com\r\nX-Api-Key: "+dummyKey+"\r\n\r\n")
	tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(got.Body)
	if got.StatusCode != http.StatusBadGateway || strings.Contains(string(b), realKey) {
		t.Fatalf("child got %d %q, want a 502 without the real value", got.StatusCode, b)
	}
}
