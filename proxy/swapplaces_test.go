package proxy

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// withPlaces narrows where the named fixture secret may go.
func withPlaces(name string, places ...string) func(*Config) {
	return func(c *Config) {
		for i := range c.Secrets {
			if c.Secrets[i].Name == name {
				for j := range c.Secrets[i].Rules {
					c.Secrets[i].Rules[j].Places = places
				}
			}
		}
	}
}

// slashy is a secret whose real value holds characters that URL and JSON
// encodings change, as base64 secrets do.
const (
	realSlashy  = "AbC/dEf+GhI=jKl/mNo+PqR=sTu/vWx+YZ0="
	dummySlashy = "slashydummyslashydummyslashydummy123"
)

func withSlashy(places ...string) func(*Config) {
	return func(c *Config) {
		gh, _ := ParseHostPattern("api.github.com")
		c.Secrets = append(c.Secrets, Secret{Name: "SLASHY", Dummy: dummySlashy, Real: realSlashy,
			Rules: []Rule{{Hosts: []HostPattern{gh}, Places: places}}})
	}
}

func (w *world) do(req *http.Request) (*http.Response, string) {
	w.t.Helper()
	res, err := w.client().Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	return res, string(b)
}

func (w *world) only() seen {
	w.t.Helper()
	s := w.seenRequests()
	if len(s) != 1 {
		w.t.Fatalf("upstream saw %d requests, want 1", len(s))
	}
	return s[0]
}

func TestQueryValueSwappedWhereAllowed(t *testing.T) {
	w := newWorld(t, nil, withPlaces("GITHUB_TOKEN", "query:access_token"), withSlashy("query:key"))
	req, _ := http.NewRequest("GET", "https://api.github.com/user?b=2&access_token="+dummyGH+"&key="+dummySlashy+"&a=%20x", nil)
	res, body := w.do(req)
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	s := w.only()
	want := "/user?b=2&access_token=" + realGH + "&key=" + url.QueryEscape(realSlashy) + "&a=%20x"
	if s.Path != want {
		t.Errorf("upstream saw %q\nwant          %q", s.Path, want)
	}
	l := w.waitAudit(decisionAllowed)
	if l["path"] != "/user?a=&access_token=&b=&key=" {
		t.Errorf("audit path %v", l["path"])
	}
	if inj, _ := l["injected"].([]any); len(inj) != 2 {
		t.Errorf("audit injected = %v, want both secrets", l["injected"])
	}
	w.assertNoReal()
}

func TestQueryValueNotAllowedTrips(t *testing.T) {
	for _, tc := range []struct{ name, query string }{
		{"other parameter", "token=" + dummyGH},
		{"in a parameter name", dummyGH + "=1"},
		{"headers only", "access_token=" + dummyGH},
	} {
		t.Run(tc.name, func(t *testing.T) {
			places := []string{"query:access_token"}
			if tc.name == "headers only" {
				places = []string{"header:authorization"}
			}
			w := newWorld(t, nil, withPlaces("GITHUB_TOKEN", places...))
			req, _ := http.NewRequest("GET", "https://api.github.com/user?"+tc.query, nil)
			res, _ := w.do(req)
			if res.StatusCode != http.StatusForbidden || len(w.seenRequests()) != 0 {
				t.Fatalf("status %d, upstream saw %d; want 403 and nothing sent", res.StatusCode, len(w.seenRequests()))
			}
			w.waitAudit(decisionTripwire)
		})
	}
}

func TestPathSwappedWhereAllowed(t *testing.T) {
	w := newWorld(t, nil, withSlashy("path"))
	req, _ := http.NewRequest("GET", "https://api.github.com/keys/"+dummySlashy+"/info", nil)
	res, body := w.do(req)
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	// A '/' of the real value must not split the path segment.
	if got, want := w.only().Path, "/keys/"+url.PathEscape(realSlashy)+"/info"; got != want {
		t.Errorf("upstream path %q, want %q", got, want)
	}

	w = newWorld(t, nil, withSlashy("query"))
	req, _ = http.NewRequest("GET", "https://api.github.com/keys/"+dummySlashy, nil)
	if res, _ := w.do(req); res.StatusCode != http.StatusForbidden || len(w.seenRequests()) != 0 {
		t.Fatalf("path not allowed: status %d, want 403 and nothing sent", res.StatusCode)
	}
}

func TestBasicAuthSwapped(t *testing.T) {
	w := newWorld(t, nil, withPlaces("GITHUB_TOKEN", "basic-auth"))
	req, _ := http.NewRequest("GET", "https://api.github.com/o/r.git/info/refs", nil)
	req.SetBasicAuth("x-access-token", dummyGH)
	res, body := w.do(req)
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	got := w.only().Header.Get("Authorization")
	if got != "Basic "+base64.StdEncoding.EncodeToString([]byte("x-access-token:"+realGH)) {
		t.Fatalf("upstream Authorization = %q, want Basic with the real token", got)
	}
	// The dummy as the user name works too (some clients send the token
	// there with an empty password).
	req, _ = http.NewRequest("GET", "https://api.github.com/o/r.git/info/refs", nil)
	req.SetBasicAuth(dummyGH, "")
	w.do(req)
	if s := w.seenRequests(); len(s) != 2 || s[1].Header.Get("Authorization") != "Basic "+basic(realGH, "") {
		t.Fatal("dummy as the Basic user name was not swapped")
	}
	w.assertNoReal()
}

func TestBasicAuthNotAllowedTrips(t *testing.T) {
	for _, tc := range []struct {
		name   string
		places []string
		url    string
	}{
		{"place not allowed", []string{"header:authorization"}, "https://api.github.com/x"},
		{"other host", nil, "https://api.anthropic.com/x"},
		{"plain http", nil, "http://plain.test/x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, nil, withPlaces("GITHUB_TOKEN", tc.places...))
			req, _ := http.NewRequest("GET", tc.url, nil)
			req.SetBasicAuth("x-access-token", dummyGH)
			res, _ := w.do(req)
			if res.StatusCode != http.StatusForbidden || len(w.seenRequests()) != 0 {
				t.Fatalf("status %d, upstream saw %d; want 403 and nothing sent", res.StatusCode, len(w.seenRequests()))
			}
			w.waitAudit(decisionTripwire)
		})
	}
}

func TestBodySwappedWhereAllowed(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, body, want string
	}{
		{"raw", "text/plain", "token " + dummyGH + " and " + dummySlashy, "token " + realGH + " and " + realSlashy},
		{"json", "application/json", `{"t":"` + dummySlashy + `"}`, `{"t":"` + jsonEscape(realSlashy) + `"}`},
		{"form", "application/x-www-form-urlencoded", "a=1&t=" + dummySlashy, "a=1&t=" + url.QueryEscape(realSlashy)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, nil, withPlaces("GITHUB_TOKEN", "body"), withSlashy("body"))
			req, _ := http.NewRequest("POST", "https://api.github.com/x", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.contentType)
			res, body := w.do(req)
			if res.StatusCode != 200 {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			s := w.only()
			if s.Body != tc.want {
				t.Fatalf("upstream body %q\nwant %q", s.Body, tc.want)
			}
			if tc.name == "form" {
				if v, _ := url.ParseQuery(s.Body); v.Get("t") != realSlashy {
					t.Errorf("form value decodes to %q", v.Get("t"))
				}
			}
			w.assertNoReal()
		})
	}
}

// TestBodySwapKeepsLengthAndFindsSplitDummies sends the body in pieces
// that split the dummy, with a Content-Length the swap must keep true.
func TestBodySwapKeepsLengthAndFindsSplitDummies(t *testing.T) {
	w := newWorld(t, nil, withPlaces("GITHUB_TOKEN", "body"))
	payload := strings.Repeat("x", 70000) + dummyGH + strings.Repeat("y", 10) + dummyGH
	for _, cut := range []int{70001, 70000 + len(dummyGH)/2, 70000 + len(dummyGH) - 1} {
		pr, pw := io.Pipe()
		go func() {
			pw.Write([]byte(payload[:cut]))
			pw.Write([]byte(payload[cut:]))
			pw.Close()
		}()
		req, _ := http.NewRequest("PUT", "https://api.github.com/upload", pr)
		req.ContentLength = int64(len(payload))
		res, body := w.do(req)
		if res.StatusCode != 200 {
			t.Fatalf("status %d: %s", res.StatusCode, body)
		}
	}
	want := strings.ReplaceAll(payload, dummyGH, realGH)
	for i, s := range w.seenRequests() {
		if s.Body != want {
			t.Errorf("request %d: upstream body differs from the swapped payload (len %d, want %d)", i, len(s.Body), len(want))
		}
		if got := s.Header.Get("Content-Length"); got != strconv.Itoa(len(want)) {
			t.Errorf("request %d: upstream Content-Length %q, want %d", i, got, len(want))
		}
	}
	l := w.waitAudit(decisionAllowed)
	if inj, _ := l["injected"].([]any); len(inj) != 1 || inj[0] != "GITHUB_TOKEN" {
		t.Errorf("audit injected = %v", l["injected"])
	}
}

// TestModelAPIBodyKeepsDummies: a preset that allows only auth headers
// forwards a body holding dummies as it is, and does not trip on them: the
// body of a model API request is the model's context.
func TestModelAPIBodyKeepsDummies(t *testing.T) {
	w := newWorld(t, nil, withPlaces("ANTHROPIC_API_KEY", "header:x-api-key"))
	body := `{"messages":[{"role":"user","content":"env: ANTHROPIC_API_KEY=` + dummyKey + ` GITHUB_TOKEN=` + dummyGH + `"}]}`
	req, _ := http.NewRequest("POST", "https://api.anthropic.com/v1/messages", strings.NewReader(body))
	req.Header.Set("x-api-key", dummyKey)
	req.Header.Set("Content-Type", "application/json")
	res, _ := w.do(req)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	s := w.only()
	if s.Body != body {
		t.Fatalf("body changed on its way to a model API: %q", s.Body)
	}
	if s.Header.Get("X-Api-Key") != realKey {
		t.Error("the auth header did not get the real key")
	}
}

func TestCompressedRequestBody(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(s))
		zw.Close()
		return b.Bytes()
	}
	t.Run("gzip swapped", func(t *testing.T) {
		w := newWorld(t, nil, withPlaces("GITHUB_TOKEN", "body"))
		req, _ := http.NewRequest("POST", "https://api.github.com/x", bytes.NewReader(gz("t="+dummyGH)))
		req.Header.Set("Content-Encoding", "gzip")
		res, body := w.do(req)
		if res.StatusCode != 200 {
			t.Fatalf("status %d: %s", res.StatusCode, body)
		}
		s := w.only()
		zr, err := gzip.NewReader(strings.NewReader(s.Body))
		if err != nil {
			t.Fatalf("upstream body is not gzip: %v", err)
		}
		plain, _ := io.ReadAll(zr)
		if string(plain) != "t="+realGH {
			t.Fatalf("upstream body decodes to %q", plain)
		}
	})
	t.Run("unknown encoding refused", func(t *testing.T) {
		w := newWorld(t, nil, withPlaces("GITHUB_TOKEN", "body"))
		req, _ := http.NewRequest("POST", "https://api.github.com/x", strings.NewReader("\x1b\x00 brotli bytes"))
		req.Header.Set("Content-Encoding", "br")
		res, body := w.do(req)
		if res.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(body, "br") {
			t.Fatalf("got %d %q, want 415 naming the encoding", res.StatusCode, body)
		}
		if len(w.seenRequests()) != 0 {
			t.Fatal("upstream was reached")
		}
	})
	t.Run("gzip hides no dummy from the tripwire", func(t *testing.T) {
		w := newWorld(t, nil, func(c *Config) { c.InspectAll = true })
		req, _ := http.NewRequest("POST", "https://unbound.test/collect", bytes.NewReader(gz("leak="+dummyKey)))
		req.Header.Set("Content-Encoding", "gzip")
		res, _ := w.do(req)
		if res.StatusCode != http.StatusForbidden || len(w.seenRequests()) != 0 {
			t.Fatalf("status %d, upstream saw %d; want 403 and nothing", res.StatusCode, len(w.seenRequests()))
		}
		w.waitAudit(decisionTripwire)
	})
}

// TestUnboundHostBodyTripwire: with InspectAll, a dummy in the body of a
// request to a host no secret is bound to is refused: within the peek
// window before anything is sent, and past it by cutting the body before
// the dummy.
func TestUnboundHostBodyTripwire(t *testing.T) {
	for _, tc := range []struct {
		name   string
		offset int
	}{
		{"in the peek window", 100},
		{"across the window's edge", bodyPeek - 10},
		{"past the window", 3 * bodyPeek},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, nil, func(c *Config) { c.InspectAll = true })
			payload := strings.Repeat("a", tc.offset) + dummyKey + strings.Repeat("b", 1000)
			req, _ := http.NewRequest("POST", "https://unbound.test/collect", strings.NewReader(payload))
			res, body := w.do(req)
			if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "ANTHROPIC_API_KEY") {
				t.Fatalf("got %d %q, want 403 naming the secret", res.StatusCode, body)
			}
			for _, s := range w.seenRequests() {
				if strings.Contains(s.Body, dummyKey) || strings.Contains(s.Body, dummyKey[:len(dummyKey)-1]) {
					t.Fatal("the dummy reached the unbound host")
				}
			}
			if tc.offset < bodyPeek-len(dummyKey) && len(w.seenRequests()) != 0 {
				t.Fatal("a dummy in the peek window still sent the request")
			}
			l := w.waitAudit(decisionTripwire)
			if l["alert"] != true {
				t.Errorf("not an alert: %v", l)
			}
		})
	}
	t.Run("clean body passes", func(t *testing.T) {
		w := newWorld(t, nil, func(c *Config) { c.InspectAll = true })
		payload := strings.Repeat("z", 3*bodyPeek)
		req, _ := http.NewRequest("POST", "https://unbound.test/collect", strings.NewReader(payload))
		res, _ := w.do(req)
		if res.StatusCode != 200 || w.only().Body != payload {
			t.Fatalf("status %d; a clean body must pass unchanged", res.StatusCode)
		}
	})
}

// TestPlainHTTPBodyNeverGetsRealValue: over plain HTTP nothing is swapped,
// even into the body of a request to a host whose secret allows the body.
func TestPlainHTTPBodyNeverGetsRealValue(t *testing.T) {
	got := make(chan string, 1)
	plain := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	defer plain.Close()
	w := newWorld(t, nil, func(c *Config) {
		c.Resolve["api.anthropic.com:80"] = plain.Listener.Addr().String()
		// Even a binding that names port 80 gets no real value over plain HTTP.
		on80, _ := ParseHostPattern("api.anthropic.com:80")
		c.Secrets[0].Rules[0].Hosts = append(c.Secrets[0].Rules[0].Hosts, on80)
	})
	req, _ := http.NewRequest("POST", "http://api.anthropic.com/v1/messages", strings.NewReader("key="+dummyKey))
	res, _ := w.do(req)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if b := <-got; b != "key="+dummyKey {
		t.Fatalf("plain HTTP upstream got %q, want the dummy untouched", b)
	}
}
