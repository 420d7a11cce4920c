package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/martian/v3"
)

// modifyResponse is martian's response modifier: it writes refusals, counts
// bytes for the audit line, and streams responses that must not wait in
// martian's buffer.
func (p *Proxy) modifyResponse(res *http.Response) error {
	if res.Request == nil {
		return nil
	}
	ctx := martian.NewContext(res.Request)
	if ctx == nil {
		return nil
	}
	v, _ := ctx.Get(recordKey)
	rec, ok := v.(*record)
	if !ok {
		return nil
	}
	if rec.block == nil {
		if b := p.cloakResponse(res, rec); b != nil {
			_ = res.Body.Close()
			rec.block = b
		}
	}
	if rec.block != nil {
		rec.block.apply(res)
	} else {
		rec.mu.Lock() // a body tripwire may set it meanwhile
		if rec.status == 0 {
			rec.status = res.StatusCode
		}
		rec.mu.Unlock()
	}
	rec.ttfb = time.Since(rec.start)
	removeHop(res.Header)
	if rec.wantClose {
		res.Close = true
	}
	if res.Body == nil {
		res.Body = http.NoBody
	}
	res.Body = &auditBody{rc: res.Body, rec: rec, p: p, session: ctx.Session()}
	if streams(res) {
		p.stream(ctx, res, rec)
	}
	return nil
}

// apply turns res into the refusal. The status line must agree with the
// code (martian writes res.Status as is), and the connection closes: the
// request body may not have been read.
func (b *blocked) apply(res *http.Response) {
	res.StatusCode = b.status
	res.Status = fmt.Sprintf("%d %s", b.status, http.StatusText(b.status))
	res.Header = b.header.Clone()
	res.Header.Set("Content-Type", "text/plain; charset=utf-8")
	res.Header.Set("Content-Length", strconv.Itoa(len(b.body)))
	res.Body = io.NopCloser(strings.NewReader(b.body))
	res.ContentLength = int64(len(b.body))
	res.TransferEncoding = nil
	res.Close = true
}

// streams reports whether a response must reach the child as it arrives:
// an event stream, or any body of unknown length (chunked or ended by
// close), which is how streamed answers come.
func streams(res *http.Response) bool {
	if res.Request.Method == http.MethodHead || res.StatusCode < 200 ||
		res.StatusCode == http.StatusNoContent || res.StatusCode == http.StatusNotModified {
		return false
	}
	if res.ContentLength < 0 {
		return true
	}
	mt, _, _ := strings.Cut(res.Header.Get("Content-Type"), ";")
	return strings.EqualFold(strings.TrimSpace(mt), "text/event-stream")
}

// stream takes the child's connection over from martian and writes res
// flushing after every read; martian would hold up to 4 KiB in its buffer
// until the whole body was done. Afterwards the connection goes back to
// martian for the child's next request when it safely can (see reusable),
// and is closed otherwise.
func (p *Proxy) stream(ctx *martian.Context, res *http.Response, rec *record) {
	conn, brw, err := ctx.Session().Hijack()
	if err != nil {
		return // martian writes the response the ordinary way
	}
	keep := reusable(res, rec)
	complete := false
	defer func() {
		if !complete || !keep || !p.handBack(conn, brw) {
			_ = conn.Close()
		}
	}()
	defer res.Body.Close()
	if bodyRead(res.Request, rec) {
		// While the request body is still being read, the child is
		// evidently there, and the body's reader uses brw.Reader.
		stop := watchChild(conn, brw.Reader, res.Body, p.recordOf(res))
		defer stop()
	}
	chunked := res.Request.ProtoAtLeast(1, 1)
	keep = keep && chunked
	if err := writeHead(brw.Writer, res, chunked, keep); err != nil {
		return
	}
	w := io.Writer(brw.Writer)
	var cw io.WriteCloser
	if chunked {
		cw = newChunkWriter(brw.Writer)
		w = cw
	}
	buf := make([]byte, 32<<10)
	for {
		n, rerr := res.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return
			}
			if err := brw.Flush(); err != nil {
				return
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			// Leave the chunked body unterminated so the child sees a
			// truncated response, not a complete one.
			return
		}
	}
	if cw != nil {
		_ = cw.Close()
	}
	complete = brw.Flush() == nil
}

// reusable reports whether the child's connection can carry another
// request after this streamed response: the child did not ask to close it,
// the upstream did not either, and the request's body was read to its end
// (unread body bytes would be taken for the next request).
func reusable(res *http.Response, rec *record) bool {
	req := res.Request
	if rec.wantClose || res.Close || req.Close {
		return false
	}
	return bodyRead(req, rec)
}

// bodyRead reports whether the request's body has been read to its end (or
// it has none), so nothing more of it sits on the child's connection.
func bodyRead(req *http.Request, rec *record) bool {
	if req.Body == nil || req.Body == http.NoBody || req.ContentLength == 0 {
		return true
	}
	return req.ContentLength > 0 && rec.reqBodyN.Load() == req.ContentLength
}

// handBack returns the child's connection to martian after a streamed
// response. martian's loop that hijacked it reads on from it once stream
// returns, and a hijacked session can serve no further request; so that
// loop gets a retired connection that reads EOF, and the connection itself
// (with any bytes of the next request already read ahead) goes to a new
// loop through the inner listener, where cloak's modifiers check every
// request as before. It reports false if the connection cannot be handed
// back, and the caller closes it.
func (p *Proxy) handBack(conn net.Conn, brw *bufio.ReadWriter) bool {
	ic, ok := conn.(*idleConn)
	if !ok {
		return false
	}
	ahead := buffered(brw.Reader)
	if _, err := brw.Reader.Discard(len(ahead)); err != nil {
		return false
	}
	next := ic.handOff(ic.Conn, ahead)
	// A 100 Continue for the next request goes to the live conn.
	p.clients.set(next.RemoteAddr().String(), next)
	if err := p.inner.push(next); err != nil {
		_ = next.Close() // the proxy is closing
	}
	return true
}

// watchChild ends the upstream request as soon as the child goes away in
// the middle of a stream: the upstream may be silent for minutes, and a
// write to the child, which would notice, may never come. It only peeks:
// bytes the child sends (its next request, once the stream is over) stay
// buffered for whoever reads the connection next. Read timeouts are not an
// end: idleConn's idle timeout counts only writes then. stop returns once
// the watcher has stopped reading, so the connection can be handed back to
// martian with no second reader on it. (A client that half-closes its side
// after the request would lose the stream; HTTP clients do not do that.)
func watchChild(conn net.Conn, r *bufio.Reader, body io.Closer, rec *record) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case <-done:
				return
			default:
			}
			_, err := r.Peek(1)
			var ne net.Error
			switch {
			case err == nil:
				<-done // the child is there and talking: nothing to watch
				return
			case errors.As(err, &ne) && ne.Timeout():
				continue
			}
			select {
			case <-done:
			default:
				if rec != nil {
					rec.fail("child closed the connection mid-stream")
				}
				_ = body.Close()
			}
			return
		}
	}()
	raw := conn
	if ic, ok := conn.(*idleConn); ok {
		raw = ic.raw
	}
	return func() {
		close(done)
		for {
			// A past deadline ends a peek that is waiting on the child;
			// a timed-out read leaves TLS and bufio state intact.
			_ = raw.SetReadDeadline(time.Now())
			select {
			case <-exited:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}

// recordOf is the audit record of a response's request.
func (p *Proxy) recordOf(res *http.Response) *record {
	ctx := martian.NewContext(res.Request)
	if ctx == nil {
		return nil
	}
	v, _ := ctx.Get(recordKey)
	rec, _ := v.(*record)
	return rec
}

// writeHead writes the status line and headers of a streamed response.
func writeHead(w *bufio.Writer, res *http.Response, chunked, keep bool) error {
	h := res.Header.Clone()
	h.Del("Content-Length")
	h.Del("Transfer-Encoding")
	if !keep {
		h.Set("Connection", "close")
	}
	if chunked {
		h.Set("Transfer-Encoding", "chunked")
	}
	text := strings.TrimSpace(strings.TrimPrefix(res.Status, strconv.Itoa(res.StatusCode)))
	if text == "" {
		text = http.StatusText(res.StatusCode)
	}
	if _, err := fmt.Fprintf(w, "HTTP/1.1 %03d %s\r\n", res.StatusCode, text); err != nil {
		return err
	}
	if err := h.Write(w); err != nil {
		return err
	}
	if _, err := w.WriteString("\r\n"); err != nil {
		return err
	}
	return w.Flush()
}

// chunkWriter writes HTTP/1.1 chunked encoding (RFC 9112 7.1).
type chunkWriter struct{ w *bufio.Writer }

func newChunkWriter(w *bufio.Writer) *chunkWriter { return &chunkWriter{w: w} }

func (c *chunkWriter) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if _, err := fmt.Fprintf(c.w, "%x\r\n", len(b)); err != nil {
		return 0, err
	}
	n, err := c.w.Write(b)
	if err != nil {
		return n, err
	}
	_, err = c.w.WriteString("\r\n")
	return n, err
}

func (c *chunkWriter) Close() error {
	_, err := c.w.WriteString("0\r\n\r\n")
	return err
}

// auditBody counts the response bytes and writes the audit line when the
// body is closed, which martian and stream both do once the response is
// written.
type auditBody struct {
	rc      io.ReadCloser
	rec     *record
	p       *Proxy
	session *martian.Session
	n       atomic.Int64
}

// Read passes the body on. When the upstream breaks off mid-body, the
// child's connection is closed: martian would go on to wait for the next
// request on it while the child waits for the rest of a body that has a
// Content-Length, both until the idle timeout.
func (b *auditBody) Read(buf []byte) (int, error) {
	n, err := b.rc.Read(buf)
	b.n.Add(int64(n))
	if err != nil && err != io.EOF {
		b.rec.fail("upstream body: " + b.p.redact(err.Error()))
		if conn, _, herr := b.session.Hijack(); herr == nil {
			_ = conn.Close()
		}
	}
	return n, err
}

func (b *auditBody) Close() error {
	err := b.rc.Close()
	b.rec.respBytes = b.n.Load()
	b.p.finish(b.rec)
	return err
}
