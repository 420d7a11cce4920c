package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// loadShape is how hard the load test pushes: CLOAK_LOAD=1 for the full
// load (256 streams for 30 s and 10,000 short requests), a reduced one by
// default so the suite stays quick.
type loadShape struct {
	streams  int
	duration time.Duration
	every    time.Duration
	requests int
	workers  int
}

func shapeFromEnv() loadShape {
	if os.Getenv("CLOAK_LOAD") == "1" {
		return loadShape{streams: 256, duration: 30 * time.Second, every: 100 * time.Millisecond, requests: 10000, workers: 32}
	}
	return loadShape{streams: 32, duration: 3 * time.Second, every: 100 * time.Millisecond, requests: 1000, workers: 16}
}

// TestLoadThroughTheBinary drives many event streams and a flood of short
// requests through one cloak: every event arrives in order, nothing fails,
// no connection is left open on cloak's side, and cloak's peak RSS is
// logged (and bounded, to catch a proxy that buffers bodies).
func TestLoadThroughTheBinary(t *testing.T) {
	shape := shapeFromEnv()
	var real string
	u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != real {
			http.Error(w, "no real key", http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/v1/messages" {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok":true}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		tick := time.NewTicker(shape.every)
		defer tick.Stop()
		for i := 0; i < int(shape.duration/shape.every); i++ {
			fmt.Fprintf(w, "event: delta\ndata: {\"seq\":%d}\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			}
		}
	})
	s, r := anthropicSession(t, u)
	real = r
	cmd, out, errb := s.start(nil, "sh", "-c", `echo "$https_proxy $NODE_EXTRA_CA_CERTS $ANTHROPIC_API_KEY"; exec sleep 3600`)
	fields := strings.Fields(readLine(t, out, 20*time.Second))
	if len(fields) != 3 {
		t.Fatalf("child said %q", fields)
	}
	proxyURL, err := parseURL(fields[0])
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(fields[1])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	tr := &http.Transport{
		Proxy:               http.ProxyURL(proxyURL),
		TLSClientConfig:     &tls.Config{RootCAs: roots},
		MaxIdleConnsPerHost: shape.workers,
	}
	c := &http.Client{Transport: tr}
	rssBefore := procStatus(t, cmd.Process.Pid, "VmRSS")

	start := time.Now()
	errs := drive(c, fields[2], shape)
	elapsed := time.Since(start)
	if len(errs) > 0 {
		t.Fatalf("under load:\n%s", strings.Join(errs, "\n"))
	}
	peak := procStatus(t, cmd.Process.Pid, "VmHWM")
	t.Logf("%d streams x %v and %d short requests in %v; cloak RSS %d KiB before, peak %d KiB, %d threads",
		shape.streams, shape.duration, shape.requests, elapsed.Round(time.Millisecond), rssBefore, peak, procStatus(t, cmd.Process.Pid, "Threads"))
	if peak > 512<<10 {
		t.Errorf("cloak's peak RSS is %d KiB: is it buffering bodies?", peak)
	}

	// Once the client has closed its connections, cloak holds none open
	// toward it: a leaked one would sit in CLOSE_WAIT on the proxy's port.
	tr.CloseIdleConnections()
	port := proxyURL.Port()
	var open int
	deadline := time.Now().Add(10 * time.Second)
	for open = openOnPort(t, port); open > 0 && time.Now().Before(deadline); open = openOnPort(t, port) {
		time.Sleep(20 * time.Millisecond)
	}
	if open > 0 {
		t.Errorf("%d connections still open on cloak's side of the proxy port", open)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	s.assertNoLeak(errb.String())
	lines := len(s.auditLines())
	if min := shape.streams + shape.requests; lines < min {
		t.Errorf("audit log has %d lines, want at least %d", lines, min)
	}
}

// drive runs the load and returns what went wrong (at most ten lines).
func drive(c *http.Client, dummy string, shape loadShape) []string {
	ctx, cancel := context.WithTimeout(context.Background(), shape.duration+90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	fail := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(errs) < 10 {
			errs = append(errs, fmt.Sprintf(format, a...))
		}
	}
	want := int(shape.duration / shape.every)
	for i := 0; i < shape.streams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "POST", "https://api.anthropic.com/v1/messages", strings.NewReader(`{"stream":true}`))
			req.Header.Set("x-api-key", dummy)
			res, err := c.Do(req)
			if err != nil {
				fail("stream %d: %v", i, err)
				return
			}
			defer res.Body.Close()
			if res.StatusCode != 200 {
				fail("stream %d: status %d", i, res.StatusCode)
				return
			}
			br := bufio.NewReader(res.Body)
			next := 0
			for {
				line, err := br.ReadString('\n')
				if err == io.EOF && line == "" {
					break
				}
				if err != nil {
					fail("stream %d after event %d: %v", i, next, err)
					return
				}
				seq, ok := strings.CutPrefix(strings.TrimSpace(line), `data: {"seq":`)
				if !ok {
					continue
				}
				if n, _ := strconv.Atoi(strings.TrimSuffix(seq, "}")); n != next {
					fail("stream %d: event %d arrived where %d was due", i, n, next)
					return
				}
				next++
			}
			if next != want {
				fail("stream %d: %d events, want %d", i, next, want)
			}
		}()
	}
	var sent atomic.Int64
	for w := 0; w < shape.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent.Add(1) <= int64(shape.requests) {
				req, _ := http.NewRequestWithContext(ctx, "GET", "https://api.anthropic.com/v1/models", nil)
				req.Header.Set("x-api-key", dummy)
				res, err := c.Do(req)
				if err != nil {
					fail("short request: %v", err)
					return
				}
				body, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil || res.StatusCode != 200 || string(body) != `{"ok":true}` {
					fail("short request: %d %q %v", res.StatusCode, body, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return errs
}

// procStatus reads a number (kB for memory) from /proc/PID/status, which
// stays readable while cloak is non-dumpable.
func procStatus(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// openOnPort counts TCP connections whose local port is port and that are
// established or half-closed by the peer (CLOSE_WAIT), from /proc/net/tcp,
// which needs no privilege.
func openOnPort(t *testing.T, port string) int {
	t.Helper()
	p, _ := strconv.Atoi(port)
	want := fmt.Sprintf(":%04X", p)
	n := 0
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(l)
			if len(fs) > 3 && strings.HasSuffix(fs[1], want) && (fs[3] == "01" || fs[3] == "08") {
				n++
			}
		}
	}
	return n
}
