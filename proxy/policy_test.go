package proxy

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// auditLines collects audit lines and wakes waiters on each write, so tests
// wait for a line by event, with a deadline, not by sleeping.
type auditLines struct {
	mu    sync.Mutex
	raw   bytes.Buffer
	lines []map[string]any
	wake  chan struct{}
}

func newAuditLines() *auditLines { return &auditLines{wake: make(chan struct{}, 1)} }

func (a *auditLines) Write(p []byte) (int, error) {
	a.mu.Lock()
	a.raw.Write(p)
	for _, l := range bytes.Split(bytes.TrimSpace(p), []byte("\n")) {
		m := map[string]any{}
		if err := json.Unmarshal(l, &m); err != nil {
			m = map[string]any{"unparsed": string(l)}
		}
		a.lines = append(a.lines, m)
	}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// wait returns the first line for which match is true, failing the test
// after a deadline.
func (a *auditLines) wait(t *testing.T, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		a.mu.Lock()
		for _, l := range a.lines {
			if match(l) {
				a.mu.Unlock()
				return l
			}
		}
		raw := a.raw.String()
		a.mu.Unlock()
		select {
		case <-a.wake:
		case <-deadline.C:
			t.Fatalf("no matching audit line in:\n%s", raw)
			return nil
		}
	}
}

func (a *auditLines) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.raw.String()
}

func isRequestLine(l map[string]any) bool { return l["decision"] != decisionIntercepted }

// anthropicRules are the rules of launcher's anthropic preset.
func anthropicRules(t *testing.T) []Rule {
	h, err := ParseHostPattern("api.anthropic.com")
	if err != nil {
		t.Fatal(err)
	}
	return []Rule{{
		Hosts:   []HostPattern{h},
		Methods: []string{"GET", "HEAD", "POST"},
		Paths:   []string{"/v1/messages*", "/v1/models*", "/api/*"},
		Places:  []string{"header:x-api-key", "header:authorization"},
	}}
}

func egressPatterns(t *testing.T, list ...string) []HostPattern {
	var out []HostPattern
	for _, s := range list {
		p, err := ParseEgressPattern(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// TestExplainMatchesProxy drives `policy explain` (Policy.Decide) and the
// running proxy with one table: for each request, where its dummy sits and
// what both must decide.
func TestExplainMatchesProxy(t *testing.T) {
	open := Egress{Deny: egressPatterns(t, "*.evil.test")}
	closed := Egress{DenyByDefault: true, Allow: egressPatterns(t, "allowed.test")}
	closedNoGH := Egress{DenyByDefault: true, Deny: egressPatterns(t, "api.github.com")}
	for _, tc := range []struct {
		name       string
		egress     Egress
		inspectAll bool
		method     string
		url        string
		secret     string // whose dummy the request carries ("" none)
		place      string // header:NAME, query:NAME, body or basic-auth
		want       string
	}{
		{"messages", open, false, "POST", "https://api.anthropic.com/v1/messages?beta=true", "ANTHROPIC_API_KEY", "header:x-api-key", "allowed"},
		{"count tokens bearer", open, false, "POST", "https://api.anthropic.com/v1/messages/count_tokens", "ANTHROPIC_API_KEY", "header:authorization", "allowed"},
		{"models", open, false, "GET", "https://api.anthropic.com/v1/models", "ANTHROPIC_API_KEY", "header:x-api-key", "allowed"},
		{"hello", open, false, "HEAD", "https://api.anthropic.com/api/hello", "ANTHROPIC_API_KEY", "header:x-api-key", "allowed"},
		{"settings", open, false, "GET", "https://api.anthropic.com/api/claude_code/settings", "ANTHROPIC_API_KEY", "header:authorization", "allowed"},
		{"non-API path", open, false, "GET", "https://api.anthropic.com/admin/keys", "ANTHROPIC_API_KEY", "header:x-api-key", "tripwire"},
		{"prefix look-alike", open, false, "GET", "https://api.anthropic.com/v1/modelsX", "ANTHROPIC_API_KEY", "header:x-api-key", "allowed"},
		{"dot segments", open, false, "POST", "https://api.anthropic.com/v1/messages/../../admin", "ANTHROPIC_API_KEY", "header:x-api-key", "tripwire"},
		{"encoded dot segments", open, false, "POST", "https://api.anthropic.com/v1/messages/%2e%2e/%2E%2E/admin", "ANTHROPIC_API_KEY", "header:x-api-key", "tripwire"},
		{"method not allowed", open, false, "DELETE", "https://api.anthropic.com/v1/messages", "ANTHROPIC_API_KEY", "header:x-api-key", "tripwire"},
		{"place not allowed", open, false, "POST", "https://api.anthropic.com/v1/messages", "ANTHROPIC_API_KEY", "header:x-other", "tripwire"},
		{"dummy in query", open, false, "GET", "https://api.anthropic.com/v1/models", "ANTHROPIC_API_KEY", "query:key", "tripwire"},
		{"no dummy on API host", open, false, "GET", "https://api.anthropic.com/admin", "", "", "allowed"},
		{"other secret's host", open, false, "GET", "https://api.anthropic.com/v1/models", "GITHUB_TOKEN", "header:authorization", "tripwire"},
		{"github", open, false, "GET", "https://api.github.com/user", "GITHUB_TOKEN", "header:authorization", "allowed"},
		{"github on port 8443", open, false, "GET", "https://api.github.com:8443/user", "GITHUB_TOKEN", "header:authorization", "tripwire"},
		{"unbound passes through", open, false, "GET", "https://unbound.test/x", "ANTHROPIC_API_KEY", "header:x-api-key", "passed-through"},
		{"denied https", open, false, "GET", "https://x.evil.test/", "", "", "denied-host"},
		{"denied https with dummy", open, false, "GET", "https://x.evil.test/", "ANTHROPIC_API_KEY", "header:x-api-key", "denied-host"},
		{"plain http", open, false, "GET", "http://plain.test/", "", "", "allowed"},
		{"plain http with dummy", open, false, "GET", "http://plain.test/", "ANTHROPIC_API_KEY", "header:x-api-key", "tripwire"},
		{"plain http to bound host", open, false, "GET", "http://api.anthropic.com/v1/models", "ANTHROPIC_API_KEY", "header:x-api-key", "tripwire"},
		{"denied plain http", open, false, "GET", "http://x.evil.test/", "", "", "denied-host"},
		{"closed: unlisted", closed, false, "GET", "https://unbound.test/", "", "", "denied-host"},
		{"closed: allow list", closed, false, "GET", "https://allowed.test/", "", "", "passed-through"},
		{"closed: bound host", closed, false, "GET", "https://api.anthropic.com/v1/models", "ANTHROPIC_API_KEY", "header:x-api-key", "allowed"},
		{"closed: plain http", closed, false, "GET", "http://plain.test/", "", "", "denied-host"},
		{"closed: deny beats binding", closedNoGH, false, "GET", "https://api.github.com/user", "GITHUB_TOKEN", "header:authorization", "denied-host"},
		{"inspect all: clean", open, true, "GET", "https://unbound.test/x", "", "", "allowed"},
		{"inspect all: dummy", open, true, "GET", "https://unbound.test/x", "ANTHROPIC_API_KEY", "header:x-api-key", "tripwire"},
		{"inspect all: dummy in body", open, true, "POST", "https://unbound.test/x", "ANTHROPIC_API_KEY", "body", "tripwire"},
		{"model API body keeps dummies", open, false, "POST", "https://api.anthropic.com/v1/messages", "ANTHROPIC_API_KEY", "body", "allowed"},
		{"plain http body", open, false, "POST", "http://plain.test/", "ANTHROPIC_API_KEY", "body", "tripwire"},
		{"query place", open, false, "GET", "https://svc.test/api/x?page=1", "MY_TOKEN", "query:key", "allowed"},
		{"other query key", open, false, "GET", "https://svc.test/api/x", "MY_TOKEN", "query:token", "tripwire"},
		{"body place", open, false, "POST", "https://svc.test/api/x", "MY_TOKEN", "body", "allowed"},
		{"basic-auth place", open, false, "GET", "https://svc.test/api/x", "MY_TOKEN", "basic-auth", "allowed"},
		{"basic-auth off path", open, false, "GET", "https://svc.test/other", "MY_TOKEN", "basic-auth", "tripwire"},
		{"header not a place", open, false, "GET", "https://svc.test/api/x", "MY_TOKEN", "header:authorization", "tripwire"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := newAuditLines()
			w := newWorld(t, nil, func(c *Config) {
				c.Secrets[0].Rules = anthropicRules(t)
				svc, _ := ParseHostPattern("svc.test")
				c.Secrets = append(c.Secrets, Secret{Name: "MY_TOKEN", Dummy: dummyMine, Real: realMine, Rules: []Rule{{
					Hosts: []HostPattern{svc}, Paths: []string{"/api/*"}, Places: []string{"query:key", "body", "basic-auth"},
				}}})
				c.Egress = tc.egress
				c.InspectAll = tc.inspectAll
				c.Audit = log
				addr := c.Resolve["unbound.test:443"]
				for _, h := range []string{"x.evil.test:443", "allowed.test:443", "api.github.com:8443", "unbound.test:443", "svc.test:443"} {
					c.Resolve[h] = addr
				}
				c.Resolve["x.evil.test:80"] = c.Resolve["plain.test:80"]
			})

			// What explain says.
			v, err := w.proxy.policy.Decide(tc.method, tc.url)
			if err != nil {
				t.Fatal(err)
			}
			explained := v.Outcome(tc.secret, tc.place)

			// What the proxy does.
			did := w.decide(t, log, tc.method, tc.url, tc.secret, tc.place, v.May(tc.secret, tc.place))
			if explained != tc.want || did != tc.want {
				t.Fatalf("explain says %q, proxy did %q, want %q", explained, did, tc.want)
			}
			if tc.want != "allowed" && tc.want != "passed-through" && len(w.seenRequests()) != 0 {
				t.Fatalf("upstream was reached on a %s", tc.want)
			}
			if tc.want == "allowed" && tc.secret != "" {
				// Swapped where explain says it may be, else sent as is.
				want, not := realValue(tc.secret), dummyValue(tc.secret)
				if !v.May(tc.secret, tc.place) {
					want, not = not, want
				}
				s := w.seenRequests()
				if len(s) != 1 || !strings.Contains(s[0].all(), want) || strings.Contains(s[0].all(), not) {
					t.Fatalf("upstream saw %+v, want %q and not %q", s, want, not)
				}
			}
			for _, real := range []string{realKey, realGH, realMine} {
				if strings.Contains(log.String(), real) {
					t.Fatal("audit log holds a real value")
				}
			}
		})
	}
}

const (
	realMine  = "mine-REALREALREALREALREAL-0123"
	dummyMine = "mine-dummydummydummydummy-4567"
)

func dummyValue(name string) string {
	return map[string]string{"GITHUB_TOKEN": dummyGH, "MY_TOKEN": dummyMine}[name] + map[bool]string{true: dummyKey}[name == "ANTHROPIC_API_KEY"]
}

func realValue(name string) string {
	return map[string]string{"GITHUB_TOKEN": realGH, "MY_TOKEN": realMine}[name] + map[bool]string{true: realKey}[name == "ANTHROPIC_API_KEY"]
}

// all is everything the upstream saw of a request, Basic credentials
// decoded.
func (s seen) all() string {
	out := s.Path + "\n" + s.Body
	for k, vs := range s.Header {
		for _, v := range vs {
			out += "\n" + k + ": " + v
		}
	}
	if b, ok := strings.CutPrefix(s.Header.Get("Authorization"), "Basic "); ok {
		if d, err := base64.StdEncoding.DecodeString(b); err == nil {
			out += "\n" + string(d)
		}
	}
	return out
}

// decide sends one request through the proxy with the secret's dummy at place
// and returns the decision the proxy recorded for it, checking that the
// secret was injected exactly when explain says so.
func (w *world) decide(t *testing.T, log *auditLines, method, rawURL, secret, place string, inject bool) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	if name, ok := strings.CutPrefix(place, "query:"); ok {
		q := u.Query()
		q.Set(name, dummyValue(secret))
		u.RawQuery = q.Encode()
	}
	var body io.Reader
	if place == "body" {
		body = strings.NewReader(`{"note":"` + dummyValue(secret) + `"}`)
	}
	req, err := http.NewRequest(method, u.String(), body)
	if err != nil {
		t.Fatal(err)
	}
	if place == "basic-auth" {
		req.SetBasicAuth("x-access-token", dummyValue(secret))
	}
	if name, ok := strings.CutPrefix(place, "header:"); ok {
		v := dummyValue(secret)
		if name == "authorization" {
			v = "Bearer " + v
		}
		req.Header.Set(name, v)
	}
	// Passed-through tunnels show the upstream's own certificate, so the
	// client accepts any; intercepted ones must show the proxy's.
	tr := &http.Transport{
		Proxy:             http.ProxyURL(w.proxy.URL()),
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
	}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		// A refused CONNECT surfaces as a client error; the audit log
		// still says what happened.
		if !strings.Contains(err.Error(), "Forbidden") {
			t.Fatalf("request failed: %v", err)
		}
	} else {
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	l := log.wait(t, isRequestLine)
	d, _ := l["decision"].(string)
	if d == decisionAllowed {
		inj, _ := l["injected"].([]any)
		if inject && (len(inj) != 1 || inj[0] != secret) || !inject && len(inj) != 0 {
			t.Fatalf("allowed, injected %v; explain says injected: %v", l["injected"], inject)
		}
	}
	return d
}

func TestDeniedConnectIsRefusedBeforeDialing(t *testing.T) {
	// The denied host resolves to a listener of the test's own: a dial
	// would land in its backlog before the proxy answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	log := newAuditLines()
	w := newWorld(t, nil, func(c *Config) {
		c.Egress = Egress{Deny: egressPatterns(t, "*.evil.test"), Hint: "to allow it, edit [egress] in policy.toml"}
		c.Resolve["x.evil.test:443"] = ln.Addr().String()
		c.Audit = log
	})
	c, br, res := w.rawConnect("x.evil.test:443", w.proxyAuth())
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusForbidden || res.Header.Get("X-Cloak-Decision") != decisionDeniedHost {
		t.Fatalf("got %d %q, want 403 denied-host", res.StatusCode, res.Header.Get("X-Cloak-Decision"))
	}
	for _, want := range []string{"x.evil.test:443", "*.evil.test", "to allow it, edit [egress] in policy.toml"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("body %q does not say %q", body, want)
		}
	}
	// The connection is closed, never spliced.
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("connection still open after 403 (err %v)", err)
	}
	_ = ln.(*net.TCPListener).SetDeadline(time.Now())
	if conn, err := ln.Accept(); err == nil {
		conn.Close()
		t.Fatal("the proxy dialed the denied host")
	}
	l := log.wait(t, isRequestLine)
	if l["decision"] != decisionDeniedHost || l["status"] != float64(403) || l["host"] != "x.evil.test:443" || l["method"] != "CONNECT" {
		t.Fatalf("audit line = %v", l)
	}
	if s := w.proxy.Summary(); s.Refused != 1 || s.ByDecision[decisionDeniedHost] != 1 || !strings.HasPrefix(s.First, "denied-host: CONNECT x.evil.test:443") {
		t.Fatalf("summary = %+v", s)
	}
}

func TestDeniedPlainHTTPSaysWhichHostAndHow(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	w := newWorld(t, nil, func(c *Config) {
		c.Egress = Egress{DenyByDefault: true, Hint: "add it to allow under [egress]"}
		c.Resolve["plain.test:80"] = ln.Addr().String()
	})
	res, err := w.client().Get("http://plain.test/x?token=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "plain.test:80") ||
		!strings.Contains(string(body), "add it to allow under [egress]") || !strings.Contains(string(body), "default is deny") {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
	_ = ln.(*net.TCPListener).SetDeadline(time.Now())
	if conn, err := ln.Accept(); err == nil {
		conn.Close()
		t.Fatal("the proxy dialed the denied host")
	}
}

func TestEgressPatternPorts(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		host    string
		port    int
		want    bool
	}{
		{"example.com", "example.com", 443, true},
		{"example.com", "example.com", 8080, true},
		{"example.com:8080", "example.com", 8080, true},
		{"example.com:8080", "example.com", 443, false},
		{"*.example.com", "a.example.com", 22, true},
		{"*.example.com", "example.com", 443, false},
		{"[::1]:8443", "::1", 8443, true},
		{"::1", "::1", 1, true},
	} {
		p, err := ParseEgressPattern(tc.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tc.pattern, err)
		}
		if got := p.Match(tc.host, tc.port); got != tc.want {
			t.Errorf("%s matching %s:%d = %v, want %v", tc.pattern, tc.host, tc.port, got, tc.want)
		}
	}
}

// TestAuditRecordFields checks every field of a request's audit line.
func TestAuditRecordFields(t *testing.T) {
	log := newAuditLines()
	w := newWorld(t, func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Length", "5")
		_, _ = io.WriteString(rw, "hello")
	}, func(c *Config) { c.Audit = log; c.Session = "s1" })
	req, _ := http.NewRequest("POST", "https://api.anthropic.com/v1/messages?beta=true&key="+dummyGH, strings.NewReader(`{"a":"0123456789"}`))
	req.Header.Set("x-api-key", dummyKey)
	res, err := w.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	// The dummy in the query is out of place: tripwire. Send a clean one too.
	req, _ = http.NewRequest("POST", "https://api.anthropic.com/v1/messages?beta=true", strings.NewReader(`{"a":"0123456789"}`))
	req.Header.Set("x-api-key", dummyKey)
	res, err = w.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()

	trip := log.wait(t, func(l map[string]any) bool { return l["decision"] == decisionTripwire })
	ok := log.wait(t, func(l map[string]any) bool { return l["decision"] == decisionAllowed })
	// Every line has its own number, CONNECTs included, in order.
	if ts, os := trip["seq"].(float64), ok["seq"].(float64); ts < 1 || os <= ts {
		t.Errorf("seq %v then %v, want increasing", ts, os)
	}
	if trip["path"] != "/v1/messages?beta=&key=" || trip["alert"] != true || trip["status"] != float64(403) {
		t.Errorf("tripwire line = %v", trip)
	}
	for k, want := range map[string]any{
		"session": "s1", "method": "POST", "scheme": "https",
		"host": "api.anthropic.com:443", "path": "/v1/messages?beta=", "status": float64(200),
		"req_bytes": float64(18), "resp_bytes": float64(5), "decision": "allowed",
	} {
		if ok[k] != want {
			t.Errorf("%s = %v, want %v", k, ok[k], want)
		}
	}
	if inj, _ := ok["injected"].([]any); len(inj) != 1 || inj[0] != "ANTHROPIC_API_KEY" {
		t.Errorf("injected = %v", ok["injected"])
	}
	ttfb, _ := ok["ttfb_ms"].(float64)
	dur, _ := ok["duration_ms"].(float64)
	if ttfb <= 0 || dur < ttfb {
		t.Errorf("ttfb_ms %v, duration_ms %v: want 0 < ttfb <= duration", ttfb, dur)
	}
	if _, err := time.Parse(time.RFC3339Nano, ok["time"].(string)); err != nil {
		t.Errorf("time %v: %v", ok["time"], err)
	}
	if ok["reason"] == nil || trip["reason"] == "" {
		t.Errorf("missing reason: %v / %v", ok, trip)
	}
}

// TestAuditNeverHoldsRealValue sends many request shapes, refused and
// failed ones included, and greps the whole log and the summary.
func TestAuditNeverHoldsRealValue(t *testing.T) {
	log := newAuditLines()
	w := newWorld(t, func(rw http.ResponseWriter, r *http.Request) {
		// An upstream that echoes the real value back.
		rw.Header().Set("X-Echo", r.Header.Get("X-Api-Key"))
		_, _ = io.WriteString(rw, r.Header.Get("X-Api-Key"))
	}, func(c *Config) {
		c.Audit = log
		c.Egress = Egress{Deny: egressPatterns(t, "*.evil.test")}
		c.Resolve["api.github.com:443"] = "127.0.0.1:1" // upstream down
	})
	c := w.client()
	send := func(method, u string, h http.Header) {
		req, err := http.NewRequest(method, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			req.Header[k] = v
		}
		res, err := c.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}
	hk := func(k, v string) http.Header { return http.Header{k: {v}} }
	send("GET", "https://api.anthropic.com/v1/models", hk("X-Api-Key", dummyKey))
	send("GET", "https://api.anthropic.com/v1/models/"+realKey+"?"+realKey+"=1", hk("X-Api-Key", dummyKey))
	send("GET", "https://api.anthropic.com/admin", hk("X-Api-Key", dummyKey))
	send("GET", "https://api.anthropic.com/v1/models?k="+dummyKey, nil)
	send("GET", "https://api.anthropic.com/v1/models", hk("X-Api-Key", dummyGH))
	send("GET", "https://api.github.com/user", hk("Authorization", "token "+dummyGH))
	send("GET", "https://x.evil.test/"+realKey, nil)
	send("GET", "http://plain.test/"+realKey, hk("X-Api-Key", dummyKey))
	send(realKey, "https://api.anthropic.com/v1/models", nil)
	fronted, _ := http.NewRequest("GET", "https://api.anthropic.com/v1/models", nil)
	fronted.Host = realKey + ".evil.test"
	if res, err := c.Do(fronted); err == nil {
		res.Body.Close()
	}
	w.rawConnect(realKey+".test:443", "")
	c.Transport.(*http.Transport).CloseIdleConnections()

	log.wait(t, func(l map[string]any) bool { return l["decision"] == decisionUpstreamError })
	log.wait(t, func(l map[string]any) bool { return l["decision"] == decisionNoAuth })
	log.wait(t, func(l map[string]any) bool { return l["decision"] == decisionFronting })
	log.wait(t, func(l map[string]any) bool { return l["decision"] == decisionDeniedHost })
	for _, real := range []string{realKey, realGH} {
		if strings.Contains(log.String(), real) {
			t.Fatalf("audit log holds a real value:\n%s", log.String())
		}
		s := w.proxy.Summary()
		if strings.Contains(s.First, real) || strings.Contains(strings.Join(s.Refusals, "\n"), real) {
			t.Fatalf("summary holds a real value: %+v", s)
		}
	}
}
