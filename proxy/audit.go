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
	decision  string
	reason    string

	// block, when set, is the answer cloak gives instead of forwarding.
	block     *blocked
	wantClose bool
	once      sync.Once
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
	r.status, r.decision, r.reason = status, decision, reason
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
