package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/google/martian/v3"
)

// newTransport is martian's upstream transport. martian's default keeps two
// idle connections per host, which throttles an agent's parallel requests.
// Its write and read buffers stay at net/http's 4 KiB: 16 KiB write buffers
// cost 3 MiB more at 256 connections and saved no CPU per MiB uploaded (the
// child's own TLS records are 4 KiB).
func (p *Proxy) newTransport() *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := p.dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &upstreamConn{Conn: c, idle: p.cfg.UpstreamIdleTimeout}, nil
		},
		TLSClientConfig: &tls.Config{
			RootCAs:    p.cfg.UpstreamRoots,
			MinVersion: tls.VersionTLS12,
		},
		// HTTP/1.1 upstream; martian's loop is HTTP/1.1 throughout.
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
		TLSHandshakeTimeout:   15 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Idle upstream connections are kept for as many parallel requests
		// as an agent plausibly makes to one host: a request beyond the
		// idle limit costs a new upstream TLS handshake when it starts and
		// a closed connection when it ends (at 256 parallel clients and
		// 64 kept idle, a third of the requests paid that).
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		// The child chose its Accept-Encoding; pass bodies through as sent.
		DisableCompression: true,
		// Never through another proxy from cloak's own environment: the
		// upstream TLS must end at the real host.
		Proxy: nil,
	}
}

// upstreamConn gives each read and write an idle deadline, so a stalled
// upstream cannot hold a request forever.
type upstreamConn struct {
	net.Conn
	idle time.Duration
}

func (c *upstreamConn) Read(b []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(b)
}

func (c *upstreamConn) Write(b []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	return c.Conn.Write(b)
}

// roundTripper turns upstream failures into clear 502/504 answers with a
// reason, recorded as upstream-error, instead of martian's bare 502 with the
// error in a Warning header.
type roundTripper struct{ p *Proxy }

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	var rec *record
	if ctx := martian.NewContext(req); ctx != nil {
		if v, ok := ctx.Get(recordKey); ok {
			rec, _ = v.(*record)
		}
	}
	if rec != nil && req.Body != nil && req.Body != http.NoBody {
		req.Body = &countBody{ReadCloser: req.Body, n: &rec.reqBodyN}
	}
	res, err := rt.p.transport.RoundTrip(req)
	if rec != nil && rec.bodyTripped() {
		// The body was cut before a dummy (see prepareBody): whatever
		// upstream made of the truncated request, the child gets the
		// tripwire refusal.
		if err == nil {
			_ = res.Body.Close()
		}
		rec.mu.Lock()
		b := &blocked{status: http.StatusForbidden, header: http.Header{}, body: "cloak: refused (" + decisionTripwire + "): " + rec.reason + "\n"}
		rec.mu.Unlock()
		b.header.Set("X-Cloak-Decision", decisionTripwire)
		res = &http.Response{Request: req, Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
		b.apply(res)
		return res, nil
	}
	if err == nil {
		return res, nil
	}
	status := http.StatusBadGateway
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		status = http.StatusGatewayTimeout
	}
	reason := rt.p.redact(err.Error())
	if rec == nil {
		rec = &record{}
	}
	b := rec.deny(status, decisionUpstreamError, "upstream "+req.URL.Host+": "+reason)
	res = &http.Response{Request: req, Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	b.apply(res)
	rec.block = nil // already applied
	return res, nil
}

// countBody counts request body bytes for the audit line.
type countBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
