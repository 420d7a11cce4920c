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
