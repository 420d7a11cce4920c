package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"
)

// streamingUpstream answers /stream with a chunked event stream and
// everything else with a small body of known length.
func streamingUpstream(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/stream" {
		rw.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			_, _ = io.WriteString(rw, "data: "+string(rune('a'+i))+"\n\n")
			rw.(http.Flusher).Flush()
		}
		return
	}
	_, _ = io.WriteString(rw, "small")
}

// send makes one request on c and reports the answer and whether it went
// over a connection that had carried an earlier request.
func send(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string, bool) {
	t.Helper()
	reused := false
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body), reused
}

func newReq(method, url, body string) *http.Request {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, r)
	req.Header.Set("x-api-key", dummyKey)
	return req
}

// TestConnectionReusedAfterStream: after a streamed answer the child's
// connection carries its next request, and cloak still checks that request:
// the upstream gets the real key, and a request for another host on the
// reused connection is refused.
func TestConnectionReusedAfterStream(t *testing.T) {
	w := newWorld(t, streamingUpstream)
	c := w.client()
	res, body, _ := send(t, c, newReq("POST", "https://api.anthropic.com/stream", `{"stream":true}`))
	if res.StatusCode != 200 || body != "data: a\n\ndata: b\n\ndata: c\n\n" {
		t.Fatalf("stream: %d %q", res.StatusCode, body)
	}
	if res.Close {
		t.Fatal("streamed answer closes the connection")
	}
	// The stream's request is done and logged while the child, holding
	// its connection open, has sent nothing more.
	if l := w.waitAuditPath("/stream"); l["decision"] != decisionAllowed {
		t.Fatalf("stream audit line = %v", l)
	}
	res, body, reused := send(t, c, newReq("GET", "https://api.anthropic.com/v1/models", ""))
	if res.StatusCode != 200 || body != "small" {
		t.Fatalf("after stream: %d %q", res.StatusCode, body)
	}
	if !reused {
		t.Fatal("the request after a stream needed a new connection")
	}
	fronting := newReq("GET", "https://api.anthropic.com/v1/models", "")
	fronting.Host = "evil.test"
	res, _, reused = send(t, c, fronting)
	if !reused || res.StatusCode != http.StatusForbidden || res.Header.Get("X-Cloak-Decision") != decisionFronting {
		t.Fatalf("fronting on the reused connection: reused %v, status %d, decision %q", reused, res.StatusCode, res.Header.Get("X-Cloak-Decision"))
	}
	s := w.seenRequests()
	if len(s) != 2 {
		t.Fatalf("upstream saw %d requests, want 2", len(s))
	}
	for _, r := range s {
		if r.Header.Get("X-Api-Key") != realKey {
			t.Errorf("upstream got %q for %s, want the real key", r.Header.Get("X-Api-Key"), r.Path)
		}
	}
	w.assertNoReal()
}

// TestStreamClosesWhenReuseIsUnsafe: the connection closes after a
// streamed answer when the child asked for that, and when the request body
// had no length (cloak cannot tell it was read to its end).
func TestStreamClosesWhenReuseIsUnsafe(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  func() *http.Request
	}{
		{"client asks to close", func() *http.Request {
			r := newReq("POST", "https://api.anthropic.com/stream", "{}")
			r.Close = true
			return r
		}},
		{"body of unknown length", func() *http.Request {
			r := newReq("POST", "https://api.anthropic.com/stream", "")
			r.Body = io.NopCloser(strings.NewReader(`{"stream":true}`))
			r.ContentLength = -1
			return r
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, streamingUpstream)
			c := w.client()
			res, body, _ := send(t, c, tc.req())
			if res.StatusCode != 200 || !strings.HasSuffix(body, "data: c\n\n") {
				t.Fatalf("stream: %d %q", res.StatusCode, body)
			}
			if !res.Close {
				t.Fatal("answer does not say the connection closes")
			}
			if _, _, reused := send(t, c, newReq("GET", "https://api.anthropic.com/v1/models", "")); reused {
				t.Fatal("the connection was reused")
			}
		})
	}
}

func TestReusable(t *testing.T) {
	get, _ := http.NewRequest("GET", "https://api.anthropic.com/", nil)
	post := func(n int64) *http.Request {
		r, _ := http.NewRequest("POST", "https://api.anthropic.com/", strings.NewReader("0123456789"))
		r.ContentLength = n
		return r
	}
	for _, tc := range []struct {
		name      string
		req       *http.Request
		read      int64
		wantClose bool
		resClose  bool
		want      bool
	}{
		{"no body", get, 0, false, false, true},
		{"body read to its end", post(10), 10, false, false, true},
		{"body read in part", post(10), 4, false, false, false},
		{"body of unknown length", post(-1), 10, false, false, false},
		{"client asked to close", get, 0, true, false, false},
		{"upstream closes", get, 0, false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &record{wantClose: tc.wantClose}
			rec.reqBodyN.Store(tc.read)
			res := &http.Response{Request: tc.req, Close: tc.resClose}
			if got := reusable(res, rec); got != tc.want {
				t.Fatalf("reusable = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestPipelinedRequestAfterStream: a request the child sent right behind a
// streamed one (already in cloak's read buffer when the stream ends) is
// answered on the same connection, and checked like any other.
func TestPipelinedRequestAfterStream(t *testing.T) {
	w := newWorld(t, streamingUpstream)
	c, br, res := w.rawConnect("api.anthropic.com:443", w.proxyAuth())
	if res.StatusCode != 200 {
		t.Fatalf("CONNECT: %d", res.StatusCode)
	}
	if br.Buffered() != 0 {
		t.Fatal("bytes after the CONNECT answer")
	}
	tc := tls.Client(c, &tls.Config{ServerName: "api.anthropic.com", RootCAs: w.proxyCA.pool()})
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	two := "GET /stream HTTP/1.1\r\nHost: api.anthropic.com\r\nx-api-key: " + dummyKey + "\r\n\r\n" +
		"GET /v1/models HTTP/1.1\r\nHost: api.anthropic.com\r\nx-api-key: " + dummyKey + "\r\n\r\n"
	if _, err := io.WriteString(tc, two); err != nil {
		t.Fatal(err)
	}
	tr := bufio.NewReader(tc)
	for i, want := range []string{"data: a\n\ndata: b\n\ndata: c\n\n", "small"} {
		res, err := http.ReadResponse(tr, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i+1, err)
		}
		body, err := io.ReadAll(res.Body)
		if err != nil || string(body) != want {
			t.Fatalf("answer %d: %q, %v; want %q", i+1, body, err, want)
		}
	}
	s := w.seenRequests()
	if len(s) != 2 || s[1].Path != "/v1/models" || s[1].Header.Get("X-Api-Key") != realKey {
		t.Fatalf("upstream saw %+v", s)
	}
}

// TestCloseEndsHandedBackConnections: Close still cuts a connection that
// was handed back after a stream.
func TestCloseEndsHandedBackConnections(t *testing.T) {
	w := newWorld(t, streamingUpstream)
	c := w.client()
	send(t, c, newReq("GET", "https://api.anthropic.com/stream", ""))
	if err := w.proxy.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := newReq("GET", "https://api.anthropic.com/v1/models", "").WithContext(ctx)
	if res, err := c.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("request after Close got status %d", res.StatusCode)
	}
}

// TestTunnelEndsCleanly: a decrypted tunnel lives on after its CONNECT is
// answered; when the child closes it, its audit line is written and the
// proxy forgets the tunnel and the connection.
func TestTunnelEndsCleanly(t *testing.T) {
	w := newWorld(t, streamingUpstream)
	c := w.client()
	send(t, c, newReq("GET", "https://api.anthropic.com/stream", ""))
	send(t, c, newReq("GET", "https://api.anthropic.com/v1/models", ""))
	for _, l := range w.auditLines() {
		if l["decision"] == decisionIntercepted {
			t.Fatal("tunnel logged as ended while it is open")
		}
	}
	c.CloseIdleConnections()
	l := w.waitAudit(decisionIntercepted)
	if l["host"] != "api.anthropic.com:443" {
		t.Errorf("tunnel audit line = %v", l)
	}
	tunnels := 0
	w.proxy.tunnels.Range(func(any, any) bool { tunnels++; return true })
	w.proxy.mu.Lock()
	conns := len(w.proxy.conns)
	w.proxy.mu.Unlock()
	if tunnels != 0 || conns != 0 {
		t.Fatalf("after the tunnel closed: %d tunnels, %d connections still known", tunnels, conns)
	}
}

// TestExpectContinueAfterStream: on a connection handed back after a
// stream, a request that waits for 100 Continue still gets it (cloak writes
// it to whichever conn serves the connection now).
func TestExpectContinueAfterStream(t *testing.T) {
	w := newWorld(t, streamingUpstream)
	c, _, res := w.rawConnect("api.anthropic.com:443", w.proxyAuth())
	if res.StatusCode != 200 {
		t.Fatalf("CONNECT: %d", res.StatusCode)
	}
	tc := tls.Client(c, &tls.Config{ServerName: "api.anthropic.com", RootCAs: w.proxyCA.pool()})
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	tr := bufio.NewReader(tc)
	if _, err := io.WriteString(tc, "GET /stream HTTP/1.1\r\nHost: api.anthropic.com\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(res.Body); err != nil || res.Close {
		t.Fatalf("stream: %v, close %v", err, res.Close)
	}
	const body = `{"after":"stream"}`
	head := "POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\nx-api-key: " + dummyKey +
		"\r\nContent-Length: " + itoa(len(body)) + "\r\nExpect: 100-continue\r\n\r\n"
	if _, err := io.WriteString(tc, head); err != nil {
		t.Fatal(err)
	}
	if res, err := http.ReadResponse(tr, nil); err != nil || res.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue before the body, got %v %v", res, err)
	}
	if _, err := io.WriteString(tc, body); err != nil {
		t.Fatal(err)
	}
	if res, err := http.ReadResponse(tr, nil); err != nil || res.StatusCode != 200 {
		t.Fatalf("final answer %v %v", res, err)
	}
	s := w.seenRequests()
	if len(s) != 2 || s[1].Body != body || s[1].Header.Get("X-Api-Key") != realKey {
		t.Fatalf("upstream saw %+v", s)
	}
}
