package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loadShape is how hard the load tests push: CLOAK_LOAD=1 for the full
// load, a reduced one by default so the suite stays quick.
type loadShape struct {
	streams  int           // concurrent event streams
	duration time.Duration // how long each stream runs
	every    time.Duration // one event per stream this often
	requests int           // short requests meanwhile
	workers  int           // sending the short requests
}

func shapeFromEnv() loadShape {
	if os.Getenv("CLOAK_LOAD") == "1" {
		return loadShape{streams: 256, duration: 30 * time.Second, every: 100 * time.Millisecond, requests: 10000, workers: 32}
	}
	return loadShape{streams: 32, duration: 3 * time.Second, every: 100 * time.Millisecond, requests: 1000, workers: 16}
}

// loadUpstream serves /stream (numbered events for the shape's duration)
// and /short, and answers 401 to any request without the real key.
func loadUpstream(shape loadShape) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != realKey {
			http.Error(rw, "no real key", http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/stream" {
			rw.Header().Set("Content-Type", "application/json")
			io.WriteString(rw, `{"ok":true}`)
			return
		}
		rw.Header().Set("Content-Type", "text/event-stream")
		n := int(shape.duration / shape.every)
		tick := time.NewTicker(shape.every)
		defer tick.Stop()
		for i := 0; i < n; i++ {
			fmt.Fprintf(rw, "event: delta\ndata: {\"seq\":%d}\n\n", i)
			rw.(http.Flusher).Flush()
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(rw, "event: stop\ndata: {}\n\n")
	}
}

// runLoad drives the shape through a proxy: every stream must deliver all
// its events in order, every short request must succeed.
func runLoad(t testing.TB, c *http.Client, base string, shape loadShape) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), shape.duration+60*time.Second)
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
	for s := 0; s < shape.streams; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "POST", base+"/stream", strings.NewReader(`{"stream":true}`))
			req.Header.Set("x-api-key", dummyKey)
			res, err := c.Do(req)
			if err != nil {
				fail("stream %d: %v", s, err)
				return
			}
			defer res.Body.Close()
			if res.StatusCode != 200 {
				fail("stream %d: status %d", s, res.StatusCode)
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
					fail("stream %d after event %d: %v", s, next, err)
					return
				}
				seq, ok := strings.CutPrefix(strings.TrimSpace(line), `data: {"seq":`)
				if !ok {
					continue
				}
				n, _ := strconv.Atoi(strings.TrimSuffix(seq, "}"))
				if n != next {
					fail("stream %d: event %d arrived where %d was due", s, n, next)
					return
				}
				next++
			}
			if next != want {
				fail("stream %d: %d events, want %d", s, next, want)
			}
		}()
	}
	var sent atomic.Int64
	for wkr := 0; wkr < shape.workers; wkr++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent.Add(1) <= int64(shape.requests) {
				req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/models", nil)
				req.Header.Set("x-api-key", dummyKey)
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
	if len(errs) > 0 {
		t.Fatalf("under load:\n%s", strings.Join(errs, "\n"))
	}
}

// TestLoadStreamsAndShortRequests: many event streams at once plus a flood
// of short requests through one proxy: every event arrives in order, no
// request fails, and goroutines and open files go back to their baseline.
func TestLoadStreamsAndShortRequests(t *testing.T) {
	shape := shapeFromEnv()
	w := newWorld(t, loadUpstream(shape))
	c := w.client()
	c.Timeout = 0 // streams run longer than the fixture's timeout
	tr := c.Transport.(*http.Transport)
	tr.MaxIdleConnsPerHost = shape.workers
	base := w.baseline(c)
	start := time.Now()
	runLoad(t, c, "https://api.anthropic.com", shape)
	t.Logf("%d streams x %v and %d short requests in %v", shape.streams, shape.duration, shape.requests, time.Since(start).Round(time.Millisecond))
	w.assertBackTo(base, c)
	w.assertNoReal()
}
