package proxy

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// The hot paths of a request through the proxy, with allocation counts.
// bench/run measures the whole proxy against its peers; these isolate the
// parts cloak's own code adds.

func BenchmarkSwapRequest(b *testing.B) {
	w := newWorld(b, nil)
	req, _ := http.NewRequest("POST", "https://api.anthropic.com/v1/messages?beta=true", nil)
	for _, h := range []string{"Content-Type", "Accept", "User-Agent", "Anthropic-Version", "Anthropic-Beta", "X-Stainless-Os", "X-Stainless-Lang"} {
		req.Header.Set(h, "some-ordinary-value/1.0")
	}
	b.ReportAllocs()
	for b.Loop() {
		req.Header.Set("X-Api-Key", dummyKey)
		out := w.proxy.swapRequest(req, "api.anthropic.com", 443)
		if out.tripped != nil || len(out.injected) != 1 {
			b.Fatalf("swap = %+v", out)
		}
	}
}

func BenchmarkNormalizeHost(b *testing.B) {
	for _, h := range []string{"api.anthropic.com", "API.Anthropic.COM.", "127.0.0.1", "xn--bcher-kva.example"} {
		b.Run(h, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NormalizeHost(h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkHostPatternMatch(b *testing.B) {
	exact, _ := ParseHostPattern("api.anthropic.com")
	wild, _ := ParseHostPattern("*.githubusercontent.com")
	b.ReportAllocs()
	for b.Loop() {
		if !exact.Match("api.anthropic.com", 443) || !wild.Match("raw.githubusercontent.com", 443) || exact.Match("api.anthropic.com.evil.test", 443) {
			b.Fatal("wrong match")
		}
	}
}

// BenchmarkProxyGET is one keep-alive client sending small GETs through an
// intercepted tunnel: the proxy's added work per request, plus the client's
// and the upstream's (all in this process).
func BenchmarkProxyGET(b *testing.B) {
	w := newWorld(b, nil)
	c := w.client()
	get := func() {
		req, _ := http.NewRequest("GET", "https://api.anthropic.com/v1/models", nil)
		req.Header.Set("x-api-key", dummyKey)
		res, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
	get() // the tunnel and the upstream connection
	b.ReportAllocs()
	for b.Loop() {
		get()
	}
}

// BenchmarkProxyGETParallel is many keep-alive clients at once.
func BenchmarkProxyGETParallel(b *testing.B) {
	w := newWorld(b, nil)
	c := w.client()
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	var failed atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", "https://api.anthropic.com/v1/models", nil)
			req.Header.Set("x-api-key", dummyKey)
			res, err := c.Do(req)
			if err != nil {
				failed.Add(1)
				continue
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	})
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d requests failed", n)
	}
}

// BenchmarkProxyStream is a streamed (chunked) answer followed by the next
// request on the same client: what an agent does after every model turn.
func BenchmarkProxyStream(b *testing.B) {
	w := newWorld(b, func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/event-stream")
		for range 3 {
			_, _ = io.WriteString(rw, "event: delta\ndata: {\"text\":\"hi\"}\n\n")
			rw.(http.Flusher).Flush()
		}
	})
	c := w.client()
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest("POST", "https://api.anthropic.com/v1/messages", strings.NewReader(`{"stream":true}`))
		req.Header.Set("x-api-key", dummyKey)
		res, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Count(string(body), "event: delta") != 3 {
			b.Fatalf("body = %q", body)
		}
	}
}

// replaceBench is a response redaction set: two real values back to their
// dummies, as a run with two secrets has.
func replaceBench(b *testing.B) *replaceSet {
	s, err := newReplaceSet([]pair{
		{from: []byte(realKey), to: []byte(dummyKey), id: 0},
		{from: []byte(realGH), to: []byte(dummyGH), id: 1},
	})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkReplaceBulk streams 1 MiB of JSON-like text with a real value
// every 64 KiB through the streaming replacer.
func BenchmarkReplaceBulk(b *testing.B) {
	set := replaceBench(b)
	chunk := strings.Repeat(`{"type":"text","text":"some ordinary words"},`, 64<<10/44)
	body := strings.Repeat(chunk+realKey, 16)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		n, err := io.Copy(io.Discard, set.reader(strings.NewReader(body), nil))
		if err != nil || n != int64(len(body)) {
			b.Fatalf("copied %d, %v", n, err)
		}
	}
}

// eventSource hands out one server-sent event per Read, as an upstream
// that flushes every event does.
type eventSource struct {
	event []byte
	left  int
}

func (e *eventSource) Read(p []byte) (int, error) {
	if e.left == 0 {
		return 0, io.EOF
	}
	e.left--
	return copy(p, e.event), nil
}

// BenchmarkReplaceEvents is the per-event cost of the replacer on a stream
// of small events (one op is one event).
func BenchmarkReplaceEvents(b *testing.B) {
	set := replaceBench(b)
	event := []byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello there\"}}\n\n")
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(event)))
	b.ReportAllocs()
	const perStream = 1000
	var r io.Reader
	i := 0
	for b.Loop() {
		if i%perStream == 0 {
			r = set.reader(&eventSource{event: event, left: perStream}, nil)
		}
		i++
		got := 0
		for got < len(event) {
			n, err := r.Read(buf)
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
	}
}
