// Package proxy is cloak's HTTPS proxy: martian v3 on a loopback port, with
// cloak's own CONNECT handling in front of it.
//
// The child reaches every HTTPS host through CONNECT. cloak answers CONNECT
// itself (martian's own MITM cannot use cloak's ECDSA leaves, has no
// per-host pass-through, and splices a tunnel even after a 407):
//
//   - without the session's proxy credentials: 407, and the connection closes;
//   - to a host the egress policy denies: 403 naming the host, before any dial;
//   - to a host no secret is bound to: a plain TCP tunnel, untouched (unless
//     InspectAll);
//   - to a bound host: TLS with a leaf from the run's CA, and the decrypted
//     connection is handed to martian, whose HTTP loop calls cloak's request
//     and response modifiers for every request in the tunnel.
//
// # Security
//
// A real value leaves the proxy only in a request inside an intercepted
// tunnel whose CONNECT host, TLS server name and Host header are the same
// bound host, sent upstream over TLS verified against the system roots (plus
// the roots the caller adds), and only in a place its rules allow: a
// header, a query value, the path, Basic credentials, or the body (see
// prepareBody for the body's policy). A dummy seen anywhere else in a
// request's headers or URL refuses the request (403, tripwire). Every
// response cloak parses has each real value (and its URL- and
// JSON-encoded forms) turned back into the dummy before the child sees
// it, and a credential a token endpoint mints (MintRule) is kept from the
// child the same way. Real values are never written to the audit log: it
// records secret names, and the request as the child sent it.
package proxy

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/martian/v3"
	mlog "github.com/google/martian/v3/log"
	"github.com/rs/zerolog"
)

// DefaultIdleTimeout closes a connection to the child after this long with
// no byte read or written. It is an idle timeout, not a deadline: a stream
// that keeps sending is never cut.
const DefaultIdleTimeout = 10 * time.Minute

// DefaultUpstreamIdleTimeout bounds how long an upstream may stay silent. A
// model API may think for minutes before its first byte on a non-streamed
// request.
const DefaultUpstreamIdleTimeout = 15 * time.Minute

// Config is what New needs. The zero value of each optional field is a safe
// default.
type Config struct {
	Secrets []Secret
	// Leaf returns the certificate the proxy presents for host. Required.
	Leaf func(host string) (*tls.Certificate, error)
	// UpstreamRoots verifies upstream servers; nil means the system roots.
	UpstreamRoots *x509.CertPool
	// Resolve maps "host:port" to the "addr:port" to dial instead, like
	// curl's --resolve. Hosts in keys are normalised by New.
	Resolve map[string]string
	// InspectAll intercepts every host, not only bound ones, so that every
	// request is logged and the tripwire sees everything.
	InspectAll bool
	// Egress limits the hosts the child may reach; the zero value reaches
	// every host.
	Egress Egress
	// Audit receives one JSON line per request or refused connection.
	Audit io.Writer
	// Session names this run in the audit log.
	Session string
	// IdleTimeout is the idle timeout toward the child (DefaultIdleTimeout).
	IdleTimeout time.Duration
	// UpstreamIdleTimeout is the idle timeout toward upstreams
	// (DefaultUpstreamIdleTimeout): a silent upstream gets a 504.
	UpstreamIdleTimeout time.Duration
	// Minted lists response fields that hold a credential the child must
	// not see (a token endpoint's access_token): cloak keeps the value and
	// gives the child a dummy, which later requests swap back.
	Minted []MintRule
	// MintDummy makes the dummy for a minted value; nil uses a built-in
	// generator (same length, known prefix kept, the rest crypto/rand).
	MintDummy func(real string) (string, error)
}

// Proxy is a running proxy. Close stops it.
type Proxy struct {
	cfg       Config
	set       atomic.Pointer[secretSet] // configured and minted secrets
	mintMu    sync.Mutex                // serialises minting
	policy    *Policy
	resolve   map[string]string
	mp        *martian.Proxy
	ln        net.Listener
	inner     *chanListener
	transport *http.Transport
	dialer    net.Dialer
	user      string
	pass      string
	audit     zerolog.Logger
	seq       atomic.Uint64

	tunnels sync.Map    // client RemoteAddr → *tunnel
	clients clientConns // client RemoteAddr → the conn martian uses

	mu      sync.Mutex
	conns   map[net.Conn]struct{} // raw connections from the child, closed by Close
	closed  bool
	summary Summary

	serveDone chan struct{}
}

// Summary counts what the proxy did, for the end-of-run report.
type Summary struct {
	Requests   int            // audit lines: requests and tunnels
	Refused    int            // of which refused
	Alerts     int            // of which alerts (tripwire, fronting)
	ByDecision map[string]int // audit lines by decision
	First      string         // the first refusal, for a person
	// Refusals are the first maxRefusals refusals, for the -v summary.
	Refusals []string
}

// maxRefusals bounds Summary.Refusals: a looping child could refuse
// millions of requests, and the audit log has them all anyway.
const maxRefusals = 20

var silenceMartian sync.Once

// New starts a proxy on 127.0.0.1 on a port the system picks.
func New(cfg Config) (*Proxy, error) {
	if cfg.Leaf == nil {
		return nil, errors.New("proxy: no certificate source (Config.Leaf)")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.UpstreamIdleTimeout <= 0 {
		cfg.UpstreamIdleTimeout = DefaultUpstreamIdleTimeout
	}
	if cfg.Audit == nil {
		cfg.Audit = io.Discard
	}
	// martian logs to stderr, which belongs to the child's terminal.
	silenceMartian.Do(func() { mlog.SetLogger(quiet{}); mlog.SetLevel(mlog.Silent) })

	resolve := make(map[string]string, len(cfg.Resolve))
	for from, to := range cfg.Resolve {
		h, port, err := SplitHostPort(from, 443)
		if err != nil {
			return nil, fmt.Errorf("resolve %q: %w", from, err)
		}
		resolve[joinHostPort(h, port)] = to
	}
	set, err := newSecretSet(cfg.Secrets)
	if err != nil {
		return nil, err
	}
	for _, m := range cfg.Minted {
		if err := m.valid(); err != nil {
			return nil, err
		}
	}
	pass := make([]byte, 16)
	if _, err := rand.Read(pass); err != nil {
		return nil, fmt.Errorf("making proxy credentials: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening on loopback: %w", err)
	}
	p := &Proxy{
		cfg:       cfg,
		policy:    &Policy{Secrets: cfg.Secrets, Minted: cfg.Minted, Egress: cfg.Egress, InspectAll: cfg.InspectAll},
		resolve:   resolve,
		ln:        &idleListener{Listener: ln, idle: cfg.IdleTimeout},
		inner:     newChanListener(ln.Addr()),
		dialer:    net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
		user:      "cloak",
		pass:      hex.EncodeToString(pass),
		audit:     zerolog.New(cfg.Audit),
		conns:     make(map[net.Conn]struct{}),
		serveDone: make(chan struct{}),
	}
	p.set.Store(set)
	p.ln = &trackingListener{Listener: p.ln, p: p}
	p.transport = p.newTransport()

	mp := martian.NewProxy()
	mp.SetRoundTripper(&roundTripper{p: p})
	mp.SetRequestModifier(martian.RequestModifierFunc(p.modifyRequest))
	mp.SetResponseModifier(martian.ResponseModifierFunc(p.modifyResponse))
	// Deadlines are idle timeouts set by idleConn; martian's own absolute
	// per-request deadline would cut long streams.
	mp.SetTimeout(24 * time.Hour)
	p.mp = mp

	go func() {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _ = mp.Serve(p.ln) }()
		go func() { defer wg.Done(); _ = mp.Serve(p.inner) }()
		wg.Wait()
		close(p.serveDone)
	}()
	return p, nil
}

// URL is the proxy URL to hand the child, with the session's credentials.
func (p *Proxy) URL() *url.URL {
	return &url.URL{Scheme: "http", User: url.UserPassword(p.user, p.pass), Host: p.ln.Addr().String()}
}

// Addr is the loopback address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Summary reports what the proxy has refused so far.
func (p *Proxy) Summary() Summary {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.summary
	s.ByDecision = make(map[string]int, len(p.summary.ByDecision))
	for k, v := range p.summary.ByDecision {
		s.ByDecision[k] = v
	}
	s.Refusals = append([]string(nil), p.summary.Refusals...)
	return s
}

// Close stops accepting, closes every connection from the child and waits
// for martian to finish. It fails closed: nothing listens afterwards.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()

	err := p.ln.Close()
	_ = p.inner.Close()
	for c := range conns {
		_ = c.Close()
	}
	p.mp.Close()
	<-p.serveDone
	p.transport.CloseIdleConnections()
	return err
}

// trackingListener records each connection so Close can cut it.
type trackingListener struct {
	net.Listener
	p *Proxy
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	ic := c.(*idleConn)
	l.p.mu.Lock()
	if l.p.closed {
		l.p.mu.Unlock()
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.p.conns[ic.raw] = struct{}{}
	l.p.mu.Unlock()
	addr := c.RemoteAddr().String()
	l.p.clients.set(addr, ic)
	ic.life.atEnd(func() {
		l.p.clients.del(addr)
		l.p.mu.Lock()
		delete(l.p.conns, ic.raw)
		l.p.mu.Unlock()
	})
	return c, nil
}

// quiet is martian's logger: it says nothing.
type quiet struct{}

func (quiet) Infof(string, ...interface{})  {}
func (quiet) Debugf(string, ...interface{}) {}
func (quiet) Errorf(string, ...interface{}) {}
