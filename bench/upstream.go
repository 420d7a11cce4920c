package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// benchDomain is the made-up domain every bench host name lives under. Each
// proxy maps its names to the loopback upstream by its own means.
const benchDomain = "bench.test"

// keyHeader carries the bench's secret. The client sends the dummy through
// a proxy (the real value when direct); the upstream counts requests whose
// value is not the real one, so a proxy that skipped the swap shows up.
const keyHeader = "X-Api-Key"

// upstream is the loopback HTTPS server all targets reach.
type upstream struct {
	srv      *http.Server
	ln       net.Listener
	real     string
	wrongKey atomic.Int64
	requests atomic.Int64
	conns    atomic.Int64 // connections accepted
}

func startUpstream(ca *authority, real string) (*upstream, error) {
	cert, err := ca.leaf()
	if err != nil {
		return nil, fmt.Errorf("upstream certificate: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("upstream listener: %w", err)
	}
	u := &upstream{ln: ln, real: real}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /small", u.small)
	mux.HandleFunc("POST /post", u.sink)
	mux.HandleFunc("POST /upload", u.sink)
	mux.HandleFunc("GET /sse", u.sse)
	mux.HandleFunc("GET /download", u.download)
	mux.HandleFunc("GET /stats", u.stats)
	u.srv = &http.Server{
		Handler: u.checkKey(mux),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			NextProtos:   []string{"http/1.1"},
		},
		// HTTP/1.1 only, as every proxy here speaks it toward the client.
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				u.conns.Add(1)
			}
		},
		// A client that gives up mid-handshake is not news here.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() { _ = u.srv.ServeTLS(ln, "", "") }()
	return u, nil
}

func (u *upstream) port() int { return u.ln.Addr().(*net.TCPAddr).Port }

func (u *upstream) Close() error { return u.srv.Close() }

func (u *upstream) checkKey(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stats" {
			h.ServeHTTP(w, r)
			return
		}
		u.requests.Add(1)
		if r.Header.Get(keyHeader) != u.real {
			u.wrongKey.Add(1)
		}
		h.ServeHTTP(w, r)
	})
}

// stats tells the client how many connections the upstream has accepted,
// so it can tell a proxy that reuses its upstream connections from one
// that opens new ones.
func (u *upstream) stats(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(upstreamStats{Conns: u.conns.Load(), Requests: u.requests.Load()})
}

type upstreamStats struct{ Conns, Requests int64 }

// small is the typical API answer: a little JSON with a Content-Length.
func (u *upstream) small(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(smallBody)))
	_, _ = io.WriteString(w, smallBody)
}

const smallBody = `{"id":"msg_0123456789","type":"message","role":"assistant","content":[{"type":"text","text":"ok"}],"usage":{"input_tokens":12,"output_tokens":1}}`

// sink reads the whole request body and says how much it got.
func (u *upstream) sink(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]int64{"received": n})
}

// sse sends n events, delay apart, each carrying the time it was written
// (Unix nanoseconds) so the client can tell how long the event took to
// arrive. Writing and reading happen on one machine and one clock.
func (u *upstream) sse(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	delay, _ := time.ParseDuration(r.URL.Query().Get("delay"))
	f, ok := w.(http.Flusher)
	if !ok || n <= 0 {
		http.Error(w, "bad sse request", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	pad := strings.Repeat("x", 120) // about the size of a streamed text delta
	for i := range n {
		if i > 0 {
			time.Sleep(delay)
		}
		if _, err := fmt.Fprintf(w, "event: delta\ndata: {\"t\":%d,\"i\":%d,\"pad\":\"%s\"}\n\n", time.Now().UnixNano(), i, pad); err != nil {
			return
		}
		f.Flush()
	}
}

// download sends size bytes with a Content-Length.
func (u *upstream) download(w http.ResponseWriter, r *http.Request) {
	size, err := strconv.ParseInt(r.URL.Query().Get("size"), 10, 64)
	if err != nil || size < 0 {
		http.Error(w, "bad size", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	_, _ = io.CopyN(w, zeros{}, size)
}

// zeros reads as an endless run of a fixed byte.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'z'
	}
	return len(p), nil
}
