package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// baseline is what a test's proxy holds while idle: goroutines and open
// file descriptors of this process.
type baseline struct{ goroutines, fds int }

func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("counting open files: %v", err)
	}
	return len(ents)
}

// settle closes idle connections on both sides of the proxy, so that only
// what a request leaked is left.
func (w *world) settle(clients ...*http.Client) {
	for _, c := range clients {
		c.CloseIdleConnections()
	}
	w.proxy.transport.CloseIdleConnections()
	w.upstream.CloseClientConnections()
}

// baseline measures the idle proxy after one request has warmed it up and
// its goroutines have wound down (the count holds still for 100 ms).
func (w *world) baseline(c *http.Client) baseline {
	w.t.Helper()
	if status, _, err := w.get(c, "https://api.anthropic.com/ok"); status != 200 {
		w.t.Fatalf("warm-up request: %d %v", status, err)
	}
	w.settle(c)
	last, still := -1, 0
	w.waitUntil(func() bool {
		n := runtime.NumGoroutine()
		if n == last {
			still++
		} else {
			last, still = n, 0
		}
		return still >= 10
	})
	return baseline{runtime.NumGoroutine(), openFDs(w.t)}
}

// assertBackTo waits until goroutines and file descriptors are back to the
// baseline, and fails with the goroutines' stacks if they never are.
func (w *world) assertBackTo(b baseline, clients ...*http.Client) {
	w.t.Helper()
	w.settle(clients...)
	var g, fds int
	ok := w.waitUntil(func() bool {
		g, fds = runtime.NumGoroutine(), openFDs(w.t)
		return g <= b.goroutines && fds <= b.fds
	})
	if !ok {
		var sb strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&sb, 1)
		w.t.Fatalf("leak: %d goroutines (baseline %d), %d open files (baseline %d)\n%s", g, b.goroutines, fds, b.fds, sb.String())
	}
}

// waitAuditPath waits for the audit line of a request to path.
func (w *world) waitAuditPath(path string) map[string]any {
	w.t.Helper()
	var line map[string]any
	if !w.waitUntil(func() bool {
		for _, l := range w.auditLines() {
			if l["path"] == path {
				line = l
				return true
			}
		}
		return false
	}) {
		w.t.Fatalf("no audit line for %s in:\n%s", path, w.audit.String())
	}
	return line
}

// waitUntil polls cond for up to 10 s: goroutines wind down asynchronously
// and there is nothing to wait on.
func (w *world) waitUntil(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// get makes a request, with the dummy unless the URL names another port
// (where a dummy would trip), and reads the answer in full.
func (w *world) get(c *http.Client, url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if req.URL.Port() == "" {
		req.Header.Set("x-api-key", dummyKey)
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, string(body), err
}

// reset ends the upstream's side of a request with a TCP reset.
func reset(rw http.ResponseWriter) {
	conn, _, err := rw.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(interface{ NetConn() net.Conn }); ok {
		if tcp, ok := tc.NetConn().(*net.TCPConn); ok {
			_ = tcp.SetLinger(0)
		}
	}
	_ = conn.Close()
}

// TestUpstreamFaultsGiveClearErrors: an upstream that refuses, resets,
// stalls or answers garbage gives the child a clear 502/504 with a reason
// (or, once the response has begun, a cut body, promptly), the audit log
// records it, no real value is in either, cloak goes on serving, and
// nothing leaks.
func TestUpstreamFaultsGiveClearErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  func(rw http.ResponseWriter, r *http.Request, release <-chan struct{})
		refuse bool // the upstream's port is closed
		status int  // what the child gets; 200 means the body is cut
		reason string
	}{
		{name: "refuses", refuse: true, status: http.StatusBadGateway, reason: "connection refused"},
		{name: "resets before answering", status: http.StatusBadGateway, reason: "upstream",
			fault: func(rw http.ResponseWriter, _ *http.Request, _ <-chan struct{}) { reset(rw) }},
		{name: "answers garbage", status: http.StatusBadGateway, reason: "malformed HTTP",
			fault: func(rw http.ResponseWriter, _ *http.Request, _ <-chan struct{}) {
				conn, brw, _ := rw.(http.Hijacker).Hijack()
				brw.WriteString("SSH-2.0-OpenSSH_9.6 " + realKey + "\r\n\r\n")
				brw.Flush()
				conn.Close()
			}},
		{name: "stalls before answering", status: http.StatusGatewayTimeout, reason: "timeout",
			fault: func(_ http.ResponseWriter, r *http.Request, release <-chan struct{}) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}},
		{name: "resets mid-body", status: 200, reason: "upstream body",
			fault: func(rw http.ResponseWriter, _ *http.Request, _ <-chan struct{}) {
				rw.Header().Set("Content-Length", "100000")
				rw.WriteHeader(200)
				io.WriteString(rw, strings.Repeat("x", 5000))
				rw.(http.Flusher).Flush()
				reset(rw)
			}},
		{name: "resets mid-stream", status: 200, reason: "upstream body",
			fault: func(rw http.ResponseWriter, _ *http.Request, _ <-chan struct{}) {
				rw.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(rw, "event: one\ndata: 1\n\n")
				rw.(http.Flusher).Flush()
				reset(rw)
			}},
		{name: "stalls mid-stream", status: 200, reason: "timeout",
			fault: func(rw http.ResponseWriter, r *http.Request, release <-chan struct{}) {
				rw.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(rw, "event: one\ndata: 1\n\n")
				rw.(http.Flusher).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			w := newWorld(t, func(rw http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/fault" && tc.fault != nil {
					tc.fault(rw, r, release)
					return
				}
				io.WriteString(rw, "fine\n")
			}, func(c *Config) {
				c.UpstreamIdleTimeout = time.Second
				c.Resolve["api.anthropic.com:8443"] = "127.0.0.1:1" // nothing listens
			})
			t.Cleanup(func() { close(release) })
			c := w.client()
			base := w.baseline(c)
			url := "https://api.anthropic.com/fault"
			if tc.refuse {
				url = "https://api.anthropic.com:8443/fault"
			}

			status, body, err := w.get(c, url)
			switch {
			case tc.status == 200:
				if status != 200 || err == nil {
					t.Errorf("got %d, err %v: want the body cut with an error", status, err)
				}
				if errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("the child waited for its own deadline instead of seeing the cut: %v", err)
				}
			case status != tc.status || !strings.Contains(body, tc.reason):
				t.Errorf("got %d %q (err %v), want %d with %q", status, body, err, tc.status, tc.reason)
			}
			if strings.Contains(body, realKey) {
				t.Error("the child's answer holds the real value")
			}
			l := w.waitAuditPath("/fault")
			if want := map[bool]string{true: decisionAllowed, false: decisionUpstreamError}[tc.status == 200]; l["decision"] != want {
				t.Errorf("audit decision %v, want %s", l["decision"], want)
			}
			if why, _ := l["reason"].(string); tc.status != 200 && !strings.Contains(why, tc.reason) {
				t.Errorf("audit reason %q, want it to say %q", why, tc.reason)
			}
			if why, _ := l["error"].(string); tc.status == 200 && !strings.Contains(why, tc.reason) {
				t.Errorf("audit error %q, want it to say %q", why, tc.reason)
			}
			w.assertNoReal()

			if status, body, err := w.get(c, "https://api.anthropic.com/ok"); status != 200 || body != "fine\n" {
				t.Fatalf("the next request got %d %q (err %v): cloak stopped serving", status, body, err)
			}
			w.assertBackTo(base, c)
		})
	}
}

// TestChildDisconnectMidStreamCancelsUpstream: a child that goes away in
// the middle of a stream ends the upstream request at once, even while the
// upstream is silent, and leaves nothing behind.
func TestChildDisconnectMidStreamCancelsUpstream(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after func(rw http.ResponseWriter) // what the upstream does after event 1
	}{
		{"upstream silent", func(http.ResponseWriter) {}},
		{"upstream sending", func(rw http.ResponseWriter) {
			for i := 0; i < 1000; i++ {
				if _, err := io.WriteString(rw, "data: more\n\n"); err != nil {
					return
				}
				rw.(http.Flusher).Flush()
				time.Sleep(5 * time.Millisecond)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cancelled := make(chan struct{}, 1)
			w := newWorld(t, func(rw http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/ok" {
					io.WriteString(rw, "fine\n")
					return
				}
				rw.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(rw, "event: one\ndata: 1\n\n")
				rw.(http.Flusher).Flush()
				tc.after(rw)
				select {
				case <-r.Context().Done():
					cancelled <- struct{}{}
				case <-time.After(20 * time.Second):
				}
			})
			c := w.client()
			base := w.baseline(c)
			for i := 0; i < 3; i++ {
				req, _ := http.NewRequest("POST", "https://api.anthropic.com/v1/messages", strings.NewReader("{}"))
				req.Header.Set("x-api-key", dummyKey)
				res, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				line, err := bufio.NewReader(res.Body).ReadString('\n')
				if err != nil || line != "event: one\n" {
					t.Fatalf("first line %q, err %v", line, err)
				}
				// Closing a body before its end closes the connection.
				res.Body.Close()
				select {
				case <-cancelled:
				case <-time.After(10 * time.Second):
					t.Fatalf("request %d: the upstream request was not cancelled after the child left", i)
				}
			}
			l := w.waitAuditPath("/v1/messages")
			if why, _ := l["error"].(string); why == "" {
				t.Errorf("audit line does not say the stream was cut: %v", l)
			}
			w.assertBackTo(base, c)
		})
	}
}

// TestConnectionIdleAfterStreamIsClosed: after a streamed response the
// child's connection carries its next request, and once it is idle for the
// idle timeout the proxy closes it, as it does any idle connection.
func TestConnectionIdleAfterStreamIsClosed(t *testing.T) {
	w := newWorld(t, func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			rw.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(rw, "data: one\n\n")
			rw.(http.Flusher).Flush()
			io.WriteString(rw, "data: two\n\n")
			return
		}
		io.WriteString(rw, "fine\n")
	}, func(c *Config) { c.IdleTimeout = 300 * time.Millisecond })
	c, br, res := w.rawConnect("api.anthropic.com:443", w.proxyAuth())
	if res.StatusCode != 200 {
		t.Fatalf("CONNECT: %d", res.StatusCode)
	}
	tc := tls.Client(&prefixConn{Conn: c, r: br}, &tls.Config{ServerName: "api.anthropic.com", RootCAs: w.proxyCA.pool()})
	tr := bufio.NewReader(tc)
	for _, path := range []string{"/ok", "/stream"} {
		io.WriteString(tc, "GET "+path+" HTTP/1.1\r\nHost: api.anthropic.com\r\nx-api-key: "+dummyKey+"\r\n\r\n")
		res, err := http.ReadResponse(tr, nil)
		if err != nil {
			t.Fatalf("%s on the same connection: %v", path, err)
		}
		body, err := io.ReadAll(res.Body)
		if err != nil || res.StatusCode != 200 || len(body) == 0 {
			t.Fatalf("%s: %d %q %v", path, res.StatusCode, body, err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := tr.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle connection after a stream not closed by the proxy: %v", err)
	}
}
