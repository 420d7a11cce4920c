package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/martian/v3"
)

// handshakeTimeout bounds the TLS handshake with the child.
const handshakeTimeout = 10 * time.Second

// tunnel is what cloak knows of an intercepted CONNECT: the requests inside
// it may only go to this host and port.
type tunnel struct {
	host string // normalised
	port int
}

// errSNIMismatch refuses a TLS server name other than the CONNECT host.
var errSNIMismatch = errors.New("TLS server name differs from the CONNECT host")

// handleConnect takes every CONNECT over from martian. It runs inside
// martian's request modifier. A refused CONNECT and a plain tunnel end
// before it returns; a decrypted tunnel lives on in martian's inner loop
// (see intercept), and martian's loop for the CONNECT ends.
func (p *Proxy) handleConnect(ctx *martian.Context, req *http.Request) {
	conn, brw, err := ctx.Session().Hijack()
	if err != nil {
		return
	}
	outer, ok := conn.(*idleConn) // every connection martian serves is one
	if !ok {
		_ = conn.Close()
		return
	}
	raw := outer.raw
	rec := p.newRecord(req)
	rec.scheme = "https"
	intercepted := false
	defer func() {
		if !intercepted {
			p.finish(rec)
			_ = conn.Close()
		}
	}()

	if !p.authorized(req) {
		rec.refuse(http.StatusProxyAuthRequired, decisionNoAuth, "no or wrong proxy credentials")
		p.finish(rec) // logged before the child can see the refusal
		writeRaw(brw, http.StatusProxyAuthRequired, rec.reason, "Proxy-Authenticate: Basic realm=\"cloak\"\r\n")
		return
	}
	// A CONNECT inside a decrypted tunnel would open a second tunnel on
	// the same connection, under the client address tunnels are found by.
	if _, nested := p.tunnelOf(req); nested {
		rec.refuse(http.StatusBadRequest, decisionBadRequest, "CONNECT inside a tunnel")
		p.finish(rec) // logged before the child can see the refusal
		writeRaw(brw, http.StatusBadRequest, "cloak: refused (bad-request): "+rec.reason, "")
		return
	}
	// The target is read as sent, and must be host[:port] (authority-form,
	// RFC 9110 9.3.6): Go's parser takes "a.example:443@b.example:443" for
	// userinfo and a host, which another reader may see the other way.
	host, port, err := SplitHostPort(req.RequestURI, 443)
	if err != nil {
		rec.refuse(http.StatusBadRequest, decisionBadRequest, "bad CONNECT target (want HOST:PORT): "+quoteHost(req.RequestURI))
		p.finish(rec) // logged before the child can see the refusal
		writeRaw(brw, http.StatusBadRequest, "cloak: refused (bad-request): "+rec.reason, "")
		return
	}
	rec.host = joinHostPort(host, port)

	// Refused before any dial: the answer is immediate, and a denied host
	// never learns that the child tried.
	route := p.policy.Route("https", host, port)
	if route.Decision == decisionDeniedHost {
		b := p.denyHost(rec, route.Reason)
		p.finish(rec) // logged before the child can see the refusal
		writeRaw(brw, b.status, strings.TrimSuffix(b.body, "\n"), "X-Cloak-Decision: "+decisionDeniedHost+"\r\n")
		return
	}

	// Bytes the client sent right behind CONNECT (its TLS ClientHello) may
	// already sit in martian's buffer.
	client := io.MultiReader(bytes.NewReader(buffered(brw.Reader)), raw)
	if route.Decision == decisionIntercepted {
		intercepted = p.intercept(outer, client, brw, host, port, rec)
		return
	}
	p.passThrough(raw, client, brw, host, port, rec)
}

// buffered takes the bytes r has read ahead.
func buffered(r *bufio.Reader) []byte {
	b, _ := r.Peek(r.Buffered())
	return append([]byte(nil), b...)
}

// intercept decrypts the tunnel and hands its connection to martian's
// inner loop. It reports whether it did; the tunnel's audit line is then
// written when the connection closes.
func (p *Proxy) intercept(outer *idleConn, client io.Reader, brw *bufio.ReadWriter, host string, port int, rec *record) bool {
	raw := outer.raw
	writeEstablished(brw)
	mismatch := false
	conf := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// HTTP/2 inside martian would bypass every modifier.
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if hello.ServerName != "" {
				if sni, err := NormalizeHost(hello.ServerName); err != nil || sni != host {
					mismatch = true
					return nil, errSNIMismatch
				}
			}
			return p.cfg.Leaf(host)
		},
	}
	tconn := tls.Server(&bufConn{Conn: raw, r: client}, conf)
	_ = raw.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tconn.Handshake(); err != nil {
		if mismatch {
			rec.refuse(0, decisionFronting, "TLS server name differs from CONNECT host "+host)
		} else {
			rec.refuse(0, decisionBadRequest, "TLS handshake with the child failed: "+err.Error())
		}
		return false
	}
	_ = raw.SetDeadline(time.Time{})
	rec.decision, rec.reason = decisionIntercepted, "tunnel decrypted"

	key := raw.RemoteAddr().String()
	p.tunnels.Store(key, &tunnel{host: host, port: port})
	outer.life.atEnd(func() {
		p.tunnels.Delete(key)
		p.finish(rec)
	})
	// martian's loop for the CONNECT retires: what its reader had read
	// ahead went into the handshake (through client), and its goroutine
	// and buffers are not kept for the life of the tunnel.
	_, _ = brw.Reader.Discard(brw.Reader.Buffered())
	ic := outer.handOff(tconn, nil)
	p.clients.set(key, ic)
	if err := p.inner.push(ic); err != nil {
		_ = ic.Close() // the proxy is closing
	}
	return true
}

// passThrough splices a plain TCP tunnel: cloak sees nothing inside it.
func (p *Proxy) passThrough(raw net.Conn, client io.Reader, brw *bufio.ReadWriter, host string, port int, rec *record) {
	up, err := p.dial(context.Background(), "tcp", joinHostPort(host, port))
	if err != nil {
		rec.refuse(http.StatusBadGateway, decisionUpstreamError, p.redact(err.Error()))
		p.finish(rec) // logged before the child can see the refusal
		writeRaw(brw, http.StatusBadGateway, "cloak: cannot reach "+rec.host+": "+rec.reason, "")
		return
	}
	defer up.Close()
	writeEstablished(brw)
	rec.decision, rec.reason, rec.status = decisionPassedThrough, "no binding for this host", http.StatusOK
	_ = raw.SetDeadline(time.Time{})

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rec.reqBytes, _ = io.Copy(up, client)
		closeWrite(up)
	}()
	rec.respBytes, _ = io.Copy(raw, up)
	closeWrite(raw)
	wg.Wait()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}

func writeEstablished(brw *bufio.ReadWriter) {
	_, _ = brw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n")
	_ = brw.Flush()
}

// writeRaw answers a CONNECT that will not be tunnelled, then the caller
// closes the connection.
func writeRaw(brw *bufio.ReadWriter, status int, body, extraHeaders string) {
	body += "\n"
	fmt.Fprintf(brw, "HTTP/1.1 %d %s\r\n%sContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), extraHeaders, len(body), body)
	_ = brw.Flush()
}

// dial connects upstream, honouring the --resolve table.
func (p *Proxy) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if to, ok := p.resolve[addr]; ok {
		addr = to
	}
	return p.dialer.DialContext(ctx, network, addr)
}
