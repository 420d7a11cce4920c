package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestBoundHostGetsRealValueInHeader(t *testing.T) {
	w := newWorld(t, nil)
	req, _ := http.NewRequest("POST", "https://api.anthropic.com/v1/messages", strings.NewReader(`{"x":1}`))
	req.Header.Set("x-api-key", dummyKey)
	req.Header.Set("Authorization", "Bearer "+dummyKey)
	res, err := w.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	s := w.seenRequests()
	if len(s) != 1 {
		t.Fatalf("upstream saw %d requests, want 1", len(s))
	}
	if got := s[0].Header.Get("X-Api-Key"); got != realKey {
		t.Errorf("upstream x-api-key = %q, want the real key", got)
	}
	if got := s[0].Header.Get("Authorization"); got != "Bearer "+realKey {
		t.Errorf("upstream Authorization = %q, want the real key", got)
	}
	if s[0].Header.Get("Proxy-Authorization") != "" {
		t.Error("proxy credentials were forwarded upstream")
	}
	l := w.waitAudit(decisionAllowed)
	if l["host"] != "api.anthropic.com:443" || l["path"] != "/v1/messages" || l["method"] != "POST" {
		t.Errorf("audit line = %v", l)
	}
	if inj, _ := l["injected"].([]any); len(inj) != 1 || inj[0] != "ANTHROPIC_API_KEY" {
		t.Errorf("audit injected = %v", l["injected"])
	}
	w.assertNoReal()
}

func TestDummyForOtherHostTrips(t *testing.T) {
	w := newWorld(t, nil)
	req, _ := http.NewRequest("GET", "https://api.anthropic.com/v1/models", nil)
	req.Header.Set("Authorization", "token "+dummyGH)
	res, err := w.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "GITHUB_TOKEN") {
		t.Fatalf("got %d %q, want 403 naming GITHUB_TOKEN", res.StatusCode, body)
	}
	if n := len(w.seenRequests()); n != 0 {
		t.Fatalf("upstream saw %d requests, want none", n)
	}
	l := w.waitAudit(decisionTripwire)
	if l["alert"] != true {
		t.Errorf("tripwire not marked as an alert: %v", l)
	}
	w.assertNoReal()
}

func TestDummyInURLTrips(t *testing.T) {
	w := newWorld(t, nil)
	res, err := w.client().Get("https://api.github.com/search?q=" + dummyKey)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", res.StatusCode)
	}
	if len(w.seenRequests()) != 0 {
		t.Fatal("upstream was reached")
	}
	l := w.waitAudit(decisionTripwire)
	if strings.Contains(l["path"].(string), dummyKey) {
		t.Errorf("audit path keeps query values: %v", l["path"])
	}
}

func TestDomainFrontingRefused(t *testing.T) {
	w := newWorld(t, nil)
	for _, host := range []string{"evil.test", "api.github.com", "api.anthropic.com.evil.test", "evil.test:443", "xn--pple-43d.com"} {
		req, _ := http.NewRequest("GET", "https://api.anthropic.com/v1/models", nil)
		req.Host = host
		req.Header.Set("x-api-key", dummyKey)
		res, err := w.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden || res.Header.Get("X-Cloak-Decision") != decisionFronting {
			t.Errorf("Host %q: status %d decision %q, want 403 fronting", host, res.StatusCode, res.Header.Get("X-Cloak-Decision"))
		}
	}
	if n := len(w.seenRequests()); n != 0 {
		t.Fatalf("upstream saw %d requests, want none", n)
	}
}

func TestSameHostDifferentCaseAndTrailingDotIsNotFronting(t *testing.T) {
	w := newWorld(t, nil)
	for _, host := range []string{"API.Anthropic.COM", "api.anthropic.com.", "api.anthropic.com:443", "api.anthropic.com:80"} {
		req, _ := http.NewRequest("GET", "https://api.anthropic.com/v1/models", nil)
		req.Host = host
		req.Header.Set("x-api-key", dummyKey)
		res, err := w.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("Host %q: status %d, want 200", host, res.StatusCode)
		}
	}
	for _, s := range w.seenRequests() {
		if s.Host != "api.anthropic.com" {
			t.Errorf("upstream saw Host %q, want it normalised", s.Host)
		}
		if s.Header.Get("X-Api-Key") != realKey {
			t.Errorf("upstream did not get the real key")
		}
	}
}

func TestSNIDifferentFromConnectRefused(t *testing.T) {
	w := newWorld(t, nil)
	c, _, res := w.rawConnect("api.anthropic.com:443", w.proxyAuth())
	if res.StatusCode != 200 {
		t.Fatalf("CONNECT status %d", res.StatusCode)
	}
	tc := tls.Client(c, &tls.Config{ServerName: "evil.test", RootCAs: w.proxyCA.pool()})
	if err := tc.Handshake(); err == nil {
		t.Fatal("handshake with a different server name succeeded")
	}
	w.waitAudit(decisionFronting)
}

func TestConnectWithoutCredentialsGets407AndNoTunnel(t *testing.T) {
	w := newWorld(t, nil)
	for _, auth := range []string{"", "Basic " + basic("cloak", "wrong"), "Bearer x"} {
		c, br, res := w.rawConnect("unbound.test:443", auth)
		if res.StatusCode != http.StatusProxyAuthRequired {
			t.Fatalf("auth %q: status %d, want 407", auth, res.StatusCode)
		}
		io.Copy(io.Discard, res.Body)
		// The connection must be closed, never spliced.
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("auth %q: connection still open after 407 (err %v)", auth, err)
		}
	}
	if len(w.seenRequests()) != 0 {
		t.Fatal("upstream was reached")
	}
	w.waitAudit(decisionNoAuth)
}

func TestPlainHTTPWithoutCredentialsGets407(t *testing.T) {
	w := newWorld(t, nil)
	u := *w.proxy.URL()
	u.User = nil
	tr := &http.Transport{Proxy: http.ProxyURL(&u)}
	res, err := (&http.Client{Transport: tr}).Get("http://plain.test/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusProxyAuthRequired {
		t.Fatalf("status %d, want 407", res.StatusCode)
	}
}

func TestPlainHTTPNeverCarriesRealValue(t *testing.T) {
	w := newWorld(t, nil)
	req, _ := http.NewRequest("GET", "http://api.anthropic.com/v1/models", nil)
	req.Header.Set("x-api-key", dummyKey)
	res, err := w.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", res.StatusCode)
	}
	w.waitAudit(decisionTripwire)
}

func TestUnboundHostIsPassedThroughUntouched(t *testing.T) {
	w := newWorld(t, nil)
	// The child must trust the upstream's own certificate: the tunnel is
	// not decrypted, so the proxy's CA plays no part.
	tr := &http.Transport{
		Proxy:           http.ProxyURL(w.proxy.URL()),
		TLSClientConfig: &tls.Config{RootCAs: w.upstream.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs},
	}
	tr.TLSClientConfig.InsecureSkipVerify = false
	req, _ := http.NewRequest("GET", "https://unbound.test/x", nil)
	req.Header.Set("x-api-key", dummyKey)
	// Verify against the upstream CA by name.
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
		if cs.PeerCertificates[0].Subject.CommonName != "unbound.test" {
			t.Errorf("pass-through presented %q, want the upstream's own certificate", cs.PeerCertificates[0].Subject.CommonName)
		}
		if cs.PeerCertificates[0].Issuer.CommonName != "test CA" {
			t.Errorf("unexpected issuer %q", cs.PeerCertificates[0].Issuer.CommonName)
		}
		return nil
	}}
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	s := w.seenRequests()
	if len(s) != 1 || s[0].Header.Get("X-Api-Key") != dummyKey {
		t.Fatalf("upstream saw %v, want the dummy unchanged", s)
	}
	tr.CloseIdleConnections()
	l := w.waitAudit(decisionPassedThrough)
	if l["host"] != "unbound.test:443" || l["resp_bytes"].(float64) == 0 {
		t.Errorf("audit line = %v", l)
	}
}

// TestEventStreamIsNotBuffered needs no sleeps: the upstream holds event 2
// until the client has read event 1, so a proxy that buffers hangs and the
// test fails by its deadline.
func TestEventStreamIsNotBuffered(t *testing.T) {
	for _, tc := range []struct {
		name        string
		contentType string
	}{
		{"event-stream", "text/event-stream"},
		{"chunked-json", "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotFirst := make(chan struct{})
			w := newWorld(t, func(rw http.ResponseWriter, r *http.Request) {
				rw.Header().Set("Content-Type", tc.contentType)
				rw.WriteHeader(200)
				io.WriteString(rw, "event: one\ndata: 1\n\n")
				rw.(http.Flusher).Flush()
				select {
				case <-gotFirst:
				case <-r.Context().Done():
					return
				case <-time.After(15 * time.Second):
					// Failsafe so a buffering proxy fails the test
					// by the client's deadline instead of hanging.
					return
				}
				io.WriteString(rw, "event: two\ndata: 2\n\n")
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", "https://api.anthropic.com/v1/messages", strings.NewReader("{}"))
			req.Header.Set("x-api-key", dummyKey)
			res, err := w.client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			br := bufio.NewReader(res.Body)
			for _, want := range []string{"event: one", "data: 1", ""} {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("reading event 1: %v (buffered?)", err)
				}
				if strings.TrimRight(line, "\n") != want {
					t.Fatalf("got %q, want %q", line, want)
				}
			}
			close(gotFirst)
			rest, err := io.ReadAll(br)
			if err != nil {
				t.Fatalf("reading the rest: %v", err)
			}
			if string(rest) != "event: two\ndata: 2\n\n" {
				t.Fatalf("rest = %q", rest)
			}
			if got := w.seenRequests()[0].Header.Get("X-Api-Key"); got != realKey {
				t.Errorf("upstream key = %q", got)
			}
			w.waitAudit(decisionAllowed)
		})
	}
}

func TestKeepAliveRequestsAllChecked(t *testing.T) {
	w := newWorld(t, nil)
	c := w.client()
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest("GET", "https://api.anthropic.com/v1/models", nil)
		req.Header.Set("x-api-key", dummyKey)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	// The fourth request on the same connection names another host.
	req, _ := http.NewRequest("GET", "https://api.anthropic.com/v1/models", nil)
	req.Host = "evil.test"
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("keep-alive request for another host: status %d, want 403", res.StatusCode)
	}
	if n := len(w.seenRequests()); n != 3 {
		t.Fatalf("upstream saw %d, want 3", n)
	}
}

func TestUpstreamDownGives502WithReason(t *testing.T) {
	w := newWorld(t, nil, func(c *Config) { c.Resolve["api.anthropic.com:443"] = "127.0.0.1:1" })
	req, _ := http.NewRequest("GET", "https://api.anthropic.com/v1/models", nil)
	req.Header.Set("x-api-key", dummyKey)
	res, err := w.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "upstream") {
		t.Fatalf("got %d %q, want 502 with a reason", res.StatusCode, body)
	}
	w.waitAudit(decisionUpstreamError)
	w.assertNoReal()
}

func TestCloseLeavesNothingListening(t *testing.T) {
	w := newWorld(t, nil)
	addr := w.proxy.Addr()
	if err := w.proxy.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := (&netDialer{}).dial(addr); err == nil {
		c.Close()
		t.Fatal("proxy still accepts connections after Close")
	}
}

func TestUpstreamTLSIsVerified(t *testing.T) {
	// The proxy trusts a CA that did not sign the upstream's certificate.
	w := newWorld(t, nil, func(c *Config) { c.UpstreamRoots = newTestCA(t).pool() })
	req, _ := http.NewRequest("GET", "https://api.anthropic.com/v1/models", nil)
	req.Header.Set("x-api-key", dummyKey)
	res, err := w.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "certificate") {
		t.Fatalf("got %d %q, want 502 naming the certificate problem", res.StatusCode, body)
	}
	for _, s := range w.seenRequests() {
		if s.Header.Get("X-Api-Key") == realKey {
			t.Fatal("the real key went to an unverified upstream")
		}
	}
	w.waitAudit(decisionUpstreamError)
}
