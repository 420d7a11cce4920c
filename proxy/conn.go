package proxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// idleConn replaces martian's per-request absolute deadline with an idle
// timeout. martian calls SetDeadline(now+timeout) before every request, which
// cuts any response that streams for longer than the timeout (an agent's
// answer can stream for many minutes); those calls are ignored here and each
// Read and Write instead pushes the deadline of the underlying raw connection
// forward by idle.
//
// An idleConn can also be handed off (see handOff): martian's loop that
// holds it then sees the connection end, and a new idleConn for the same
// connection carries on in a new loop.
type idleConn struct {
	net.Conn          // what martian reads and writes (plain TCP, or TLS over it)
	raw      net.Conn // the TCP connection whose deadlines are set
	idle     time.Duration
	life     *connLife // shared by every idleConn the connection is handed to

	prefix  []byte      // read before Conn: bytes a previous holder read ahead
	retired atomic.Bool // handed off: reads see EOF, Close leaves Conn open
}

func newIdleConn(c, raw net.Conn, idle time.Duration) *idleConn {
	return &idleConn{Conn: c, raw: raw, idle: idle, life: &connLife{}}
}

func (c *idleConn) Read(b []byte) (int, error) {
	if c.retired.Load() {
		return 0, io.EOF
	}
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	_ = c.raw.SetReadDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(b)
}

func (c *idleConn) Write(b []byte) (int, error) {
	if c.retired.Load() {
		return 0, net.ErrClosed
	}
	_ = c.raw.SetWriteDeadline(time.Now().Add(c.idle))
	return c.Conn.Write(b)
}

// handOff retires c and returns a new idleConn for the same connection:
// over is what the new holder reads and writes (c's own Conn, or TLS over
// it), and ahead is read first (bytes the retired holder's reader took off
// the connection but did not use). After it, c's reads see EOF, its writes
// fail and its Close does nothing: martian's loop that holds c ends without
// touching the connection, and the returned idleConn owns it.
//
// Only the goroutine that reads c may call it, at a point where nothing
// else reads or writes c.
func (c *idleConn) handOff(over net.Conn, ahead []byte) *idleConn {
	c.retired.Store(true)
	return &idleConn{Conn: over, raw: c.raw, idle: c.idle, life: c.life, prefix: ahead}
}

// ReadFrom copies a response body to the child in writes as large as its
// reads. martian writes responses through a 4 KiB bufio.Writer, which hands
// a body over to ReadFrom once its buffer is empty; without this, a large
// download leaves as 4 KiB TLS records, one syscall each. Nothing waits to
// fill a buffer: each read is written at once.
func (c *idleConn) ReadFrom(r io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	return io.CopyBuffer(writerOnly{c}, r, *bp)
}

// writerOnly hides ReadFrom from io.CopyBuffer, which would call it again.
type writerOnly struct{ io.Writer }

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (c *idleConn) Close() error {
	if c.retired.Load() {
		return nil
	}
	err := c.Conn.Close()
	c.life.end()
	return err
}

// connLife is the life of one connection from the child, which may pass
// through several idleConns (see handOff).
type connLife struct {
	mu      sync.Mutex
	ended   bool     // the connection is closed
	onClose []func() // run once, when it closes
}

// atEnd runs f when the connection closes, or now if it has.
func (l *connLife) atEnd(f func()) {
	l.mu.Lock()
	if !l.ended {
		l.onClose = append(l.onClose, f)
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	f()
}

func (l *connLife) end() {
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		return
	}
	l.ended = true
	fs := l.onClose
	l.onClose = nil
	l.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// The deadline setters are no-ops: see the type's comment.
func (c *idleConn) SetDeadline(time.Time) error      { return nil }
func (c *idleConn) SetReadDeadline(time.Time) error  { return nil }
func (c *idleConn) SetWriteDeadline(time.Time) error { return nil }

// bufConn reads through r, so that bytes a bufio.Reader has already taken
// off the connection (a client may send its TLS ClientHello right behind
// CONNECT) are not lost.
type bufConn struct {
	net.Conn
	r io.Reader
}

func (c *bufConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// idleListener hands martian idleConns for every accepted TCP connection.
type idleListener struct {
	net.Listener
	idle time.Duration
}

func (l *idleListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetKeepAlive(true)
		_ = tc.SetKeepAlivePeriod(time.Minute)
	}
	return newIdleConn(c, c, l.idle), nil
}

// chanListener feeds martian the connections cloak has already taken through
// CONNECT and TLS, so martian's HTTP loop and cloak's modifiers handle every
// request inside an intercepted tunnel.
type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

var errListenerClosed = errors.New("listener closed")

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// push hands c to martian; it fails once the listener is closed.
func (l *chanListener) push(c net.Conn) error {
	select {
	case l.conns <- c:
		return nil
	case <-l.closed:
		return errListenerClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
