package proxy

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Decisions recorded in the audit log, one per request or connection.
const (
	decisionAllowed       = "allowed"        // forwarded upstream
	decisionIntercepted   = "intercepted"    // a decrypted tunnel ended
	decisionPassedThrough = "passed-through" // a plain tunnel ended
	decisionDeniedHost    = "denied-host"    // egress policy refused the host
	decisionTripwire      = "tripwire"       // a dummy where it may not go
	decisionFronting      = "fronting"       // inner host differs from CONNECT host
	decisionNoAuth        = "no-auth"        // missing or wrong proxy credentials
	decisionUpstreamError = "upstream-error" // upstream unreachable or broken
	decisionBadRequest    = "bad-request"    // malformed, or unsupported
)

// record is one audit line in the making. It holds only what the child sent
// (never a real value) plus secret names and cloak's own reasons.
type record struct {
	seq       uint64
	start     time.Time
	method    string
	scheme    string
	host      string
	path      string
	status    int
	reqBytes  int64
	reqBodyN  atomic.Int64 // request body bytes read by the transport
	respBytes int64
	ttfb      time.Duration
	injected  []string
	minted    []string // secrets minted from the response
	decision  string
	reason    string

	// mu guards injected, decision, reason and status once the request
	// body streams: a body swap or tripwire may land while the response
	// is already on its way.
	mu       sync.Mutex
	done     bool // the audit line is written
	bodyTrip bool // a dummy was cut from the request body

	// block, when set, is the answer cloak gives instead of forwarding.
	block     *blocked
	wantClose bool
	once      sync.Once

	errMu sync.Mutex
	err   string // why a forwarded exchange broke off, if it did
}

type blocked struct {
	status int
	body   string
	header http.Header
}

func (p *Proxy) newRecord(req *http.Request) *record {
	return &record{
		seq:    p.seq.Add(1),
		start:  time.Now(),
		method: req.Method,
		host:   req.Host,
		path:   auditPath(req.URL),
	}
}

// refuse marks the record as refused with a status (0 when no HTTP answer
// can be given, e.g. a failed handshake).
func (r *record) refuse(status int, decision, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.decision, r.reason = status, decision, reason
}

// fail records why an exchange broke off after it was forwarded (the
// upstream's body failed, the child went away); the first cause wins.
func (r *record) fail(why string) {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if r.err == "" {
		r.err = why
	}
}

func (r *record) failure() string {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.err
}

func (r *record) alert() bool {
	return r.decision == decisionTripwire || r.decision == decisionFronting
}

func (r *record) refused() bool {
	switch r.decision {
	case decisionAllowed, decisionIntercepted, decisionPassedThrough, "":
		return false
	}
	return true
}

// auditPath keeps the path and the query's keys, and drops query values: a
// value may be a token the child holds, or anything else private.
func auditPath(u *url.URL) string {
	if u == nil {
		return ""
	}
	path := u.EscapedPath()
	if u.RawQuery == "" {
		return path
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return path + "?<unparsed>"
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, url.QueryEscape(k)+"=")
	}
	sort.Strings(keys)
	return path + "?" + strings.Join(keys, "&")
}

// finish writes the record's audit line, once. What the child sent is
// redacted too: a child that somehow learnt a real value must not get it
// written to disk by cloak.
func (p *Proxy) finish(r *record) {
	r.once.Do(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.done = true
		d := time.Since(r.start)
		if r.reqBytes == 0 {
			r.reqBytes = r.reqBodyN.Load()
		}
		method, host, path, reason := p.redact(r.method), p.redact(r.host), p.redact(r.path), p.redact(r.reason)
		e := p.audit.Log().
			Str("time", r.start.UTC().Format(time.RFC3339Nano)).
			Str("session", p.cfg.Session).
			Uint64("seq", r.seq).
			Str("method", method).
			Str("scheme", r.scheme).
			Str("host", host).
			Str("path", path).
			Int("status", r.status).
			Int64("req_bytes", r.reqBytes).
			Int64("resp_bytes", r.respBytes).
			Float64("duration_ms", ms(d)).
			Float64("ttfb_ms", ms(r.ttfb)).
			Strs("injected", r.injected).
			Str("decision", r.decision).
			Str("reason", reason)
		if why := r.failure(); why != "" {
			e = e.Str("error", p.redact(why))
		}
		if len(r.minted) > 0 {
			e = e.Strs("minted", r.minted)
		}
		if r.alert() {
			e = e.Bool("alert", true)
		}
		e.Send()

		p.mu.Lock()
		p.summary.Requests++
		if p.summary.ByDecision == nil {
			p.summary.ByDecision = map[string]int{}
		}
		p.summary.ByDecision[r.decision]++
		if r.alert() {
			p.summary.Alerts++
		}
		if r.refused() {
			p.summary.Refused++
			line := r.decision + ": " + method + " " + host + path + ": " + reason
			if p.summary.First == "" {
				p.summary.First = line
			}
			if len(p.summary.Refusals) < maxRefusals {
				p.summary.Refusals = append(p.summary.Refusals, line)
			}
		}
		p.mu.Unlock()
	})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// addInjected records a secret swapped into the request body as it streams.
func (r *record) addInjected(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.injected {
		if n == name {
			return
		}
	}
	r.injected = append(r.injected, name)
}

// tripBody records that the request body was cut short before a dummy
// that may not go to this host. If the audit line is already written (the
// upstream answered before reading the whole body), a second line carries
// the alert.
func (p *Proxy) tripBody(r *record, name string) {
	reason := "the dummy for " + name + " in the request body may not go to " + r.host + r.path + "; the body was cut before it"
	r.mu.Lock()
	r.bodyTrip = true
	late := r.done
	if !late {
		r.status, r.decision, r.reason = http.StatusForbidden, decisionTripwire, reason
	}
	r.mu.Unlock()
	if late {
		p.audit.Log().
			Str("time", time.Now().UTC().Format(time.RFC3339Nano)).
			Str("session", p.cfg.Session).
			Uint64("seq", r.seq).
			Str("method", r.method).
			Str("scheme", r.scheme).
			Str("host", r.host).
			Str("path", r.path).
			Str("decision", decisionTripwire).
			Str("reason", reason).
			Bool("alert", true).
			Send()
		p.mu.Lock()
		p.summary.Refused++
		if p.summary.First == "" {
			p.summary.First = decisionTripwire + ": " + r.method + " " + r.host + r.path + ": " + reason
		}
		p.mu.Unlock()
	}
}

// bodyTripped reports whether tripBody cut the request body.
func (r *record) bodyTripped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bodyTrip
}
