package proxy

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestStreamLongerThanIdleTimeoutIsNotCut: the timeout toward the child is
// an idle timeout, not martian's absolute per-request deadline, so a stream
// that keeps sending lasts as long as it needs to.
func TestStreamLongerThanIdleTimeoutIsNotCut(t *testing.T) {
	const idle = 300 * time.Millisecond
	const events = 12 // 12 × 100 ms: four times the idle timeout
	w := newWorld(t, func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < events; i++ {
			io.WriteString(rw, "data: tick\n\n")
			rw.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond) // pacing the stream, not synchronising
		}
	}, func(c *Config) { c.IdleTimeout = idle })
	req, _ := http.NewRequest("GET", "https://api.anthropic.com/v1/messages", nil)
	req.Header.Set("x-api-key", dummyKey)
	start := time.Now()
	res, err := w.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("stream cut after %v: %v", time.Since(start), err)
	}
	if n := strings.Count(string(body), "data: tick"); n != events {
		t.Fatalf("got %d events, want %d", n, events)
	}
	if time.Since(start) < 3*idle {
		t.Fatalf("stream took %v: too short to prove anything", time.Since(start))
	}
}

// TestIdleConnectionIsClosed: a connection that says nothing for longer
// than the idle timeout is closed.
func TestIdleConnectionIsClosed(t *testing.T) {
	w := newWorld(t, nil, func(c *Config) { c.IdleTimeout = 200 * time.Millisecond })
	// A connection that never sends a request.
	conn, err := (netDialer{}).dial(w.proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := bufio.NewReader(conn).ReadByte(); err != io.EOF {
		t.Fatalf("idle connection not closed by the proxy: %v", err)
	}
}
