package proxy

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
)

// A client that sends "Expect: 100-continue" (curl does for bodies over
// 1 MB) waits for "100 Continue" before sending its body. martian never
// sends one, so every such upload stalled for the client's whole wait
// (a second for curl). cloak answers it once the request is allowed and the
// transport starts reading the body, and does not pass Expect upstream:
// the body is already on its way (RFC 9110 10.1.1).

// clientConns maps a connection's RemoteAddr to the conn martian reads and
// writes for it, so a 100 Continue can be written there.
type clientConns struct{ m sync.Map }

func (c *clientConns) set(addr string, conn net.Conn) { c.m.Store(addr, conn) }
func (c *clientConns) del(addr string)                { c.m.Delete(addr) }

func (c *clientConns) get(addr string) net.Conn {
	v, ok := c.m.Load(addr)
	if !ok {
		return nil
	}
	return v.(net.Conn)
}

// expectContinue takes Expect: 100-continue off req and makes the first
// read of its body answer the client with 100 Continue.
func (p *Proxy) expectContinue(req *http.Request) {
	if !strings.EqualFold(strings.TrimSpace(req.Header.Get("Expect")), "100-continue") {
		return
	}
	req.Header.Del("Expect")
	conn := p.clients.get(req.RemoteAddr)
	if conn == nil || req.Body == nil || req.Body == http.NoBody {
		return
	}
	req.Body = &continueBody{ReadCloser: req.Body, conn: conn}
}

// continueBody writes "100 Continue" before its first read. martian's
// buffered writer is empty at that point (responses are flushed whole), so
// writing to the conn directly cannot interleave with a response.
type continueBody struct {
	io.ReadCloser
	conn net.Conn
	once sync.Once
	err  error
}

func (b *continueBody) Read(p []byte) (int, error) {
	b.once.Do(func() {
		_, b.err = io.WriteString(b.conn, "HTTP/1.1 100 Continue\r\n\r\n")
	})
	if b.err != nil {
		return 0, b.err
	}
	return b.ReadCloser.Read(p)
}
