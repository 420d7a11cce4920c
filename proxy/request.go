package proxy

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/google/martian/v3"
	"golang.org/x/net/http/httpguts"
)

const recordKey = "cloak.record"

// hopHeaders are connection-scoped (RFC 9110 7.6.1) and are not forwarded.
var hopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Authorization", "Proxy-Authenticate",
	"Proxy-Connection", "Te", "Trailer", "Upgrade",
}

// modifyRequest is martian's request modifier: CONNECTs are taken over,
// every other request is checked, and dummies are swapped where allowed. A
// refusal skips the round trip; modifyResponse then writes the refusal,
// because an error returned here would not stop martian from forwarding.
func (p *Proxy) modifyRequest(req *http.Request) error {
	ctx := martian.NewContext(req)
	if ctx == nil {
		return nil
	}
	if req.Method == http.MethodConnect {
		p.handleConnect(ctx, req)
		return nil
	}
	rec := p.newRecord(req)
	ctx.Set(recordKey, rec)
	if b := p.check(req, rec); b != nil {
		rec.block = b
		ctx.SkipRoundTrip()
	}
	return nil
}

// check decides a request and rewrites it for upstream. It returns the
// refusal to send instead, or nil to forward.
func (p *Proxy) check(req *http.Request, rec *record) *blocked {
	// Go's parser lets some malformed fields through ("Transfer-Encoding :
	// chunked" keeps its space); a field that upstream parsers may read
	// differently is refused here, before it can frame anything.
	if name, ok := validFields(req.Header); !ok {
		return rec.deny(http.StatusBadRequest, decisionBadRequest, "malformed header field "+quoteHost(name))
	}
	t, inTunnel := p.tunnelOf(req)
	var host string
	var port int
	if inTunnel {
		rec.scheme = "https"
		host, port = t.host, t.port
		rec.host = joinHostPort(host, port)
		// The inner request names its own host; martian would route by it,
		// so a request for another host inside this tunnel is domain
		// fronting. An absolute-form URI sets req.Host from the URI. The
		// port in Host is not compared: the request goes to the tunnel's
		// own host and port whatever it says (Node sends ":80" there when
		// given its own TLS socket), and Host is rewritten to match.
		h, _, err := SplitHostPort(req.Host, port)
		if err != nil || h != host {
			return rec.deny(http.StatusForbidden, decisionFronting,
				"request for host "+quoteHost(req.Host)+" inside a tunnel to "+rec.host)
		}
		req.URL.Scheme = "https"
		req.URL.Host = rec.host
		req.Host = host
		if port != 443 {
			req.Host = rec.host
		}
	} else {
		rec.scheme = "http"
		if !p.authorized(req) {
			b := rec.deny(http.StatusProxyAuthRequired, decisionNoAuth, "no or wrong proxy credentials")
			b.header.Set("Proxy-Authenticate", `Basic realm="cloak"`)
			return b
		}
		// martian fills in a scheme and host for any request, so the form
		// the child sent is checked on the raw target: a request to the
		// proxy itself must name an absolute http:// URL (RFC 9112 3.2.2).
		if u, err := url.ParseRequestURI(req.RequestURI); err != nil || u.Scheme != "http" || u.Host == "" {
			return rec.deny(http.StatusBadRequest, decisionBadRequest, "not a proxy request: use an absolute http:// URL or CONNECT")
		}
		h, pt, err := SplitHostPort(req.URL.Host, 80)
		if err != nil {
			return rec.deny(http.StatusBadRequest, decisionBadRequest, "bad host: "+err.Error())
		}
		host, port = h, pt
		rec.host = joinHostPort(host, port)
		if route := p.policy.Route("http", host, port); route.Decision == decisionDeniedHost {
			return p.denyHost(rec, route.Reason)
		}
	}

	if isUpgrade(req) {
		return rec.deny(http.StatusNotImplemented, decisionBadRequest,
			"protocol upgrades (WebSocket) are not supported through cloak")
	}
	// Keep the upstream connection pooled even if the child asked to close
	// its own; the child's connection still closes after the response.
	rec.wantClose = req.Close
	req.Close = false
	removeHop(req.Header)

	path := req.URL.EscapedPath() // as sent: the rules match on it
	var out swapOut
	if inTunnel {
		out = p.swapRequest(req, host, port)
	} else {
		// Real values travel only over TLS: over plain HTTP any dummy is
		// out of place.
		out = p.findDummies(req)
	}
	if out.tripped != nil {
		return rec.deny(http.StatusForbidden, decisionTripwire,
			"the dummy for "+out.tripped.Name+" "+out.where+" may not go to "+rec.host+rec.path)
	}
	rec.injected = out.injected
	if b := p.prepareBody(req, rec, inTunnel, host, port, path); b != nil {
		return b
	}
	p.askIdentity(req)
	rec.decision = decisionAllowed
	p.expectContinue(req)
	return nil
}

// tunnelOf finds the intercepted tunnel a request arrived through.
func (p *Proxy) tunnelOf(req *http.Request) (*tunnel, bool) {
	v, ok := p.tunnels.Load(req.RemoteAddr)
	if !ok {
		return nil, false
	}
	return v.(*tunnel), true
}

// deny records a refusal and builds the answer the child gets.
func (r *record) deny(status int, decision, reason string) *blocked {
	r.refuse(status, decision, reason)
	h := http.Header{}
	h.Set("X-Cloak-Decision", decision)
	return &blocked{status: status, body: "cloak: refused (" + decision + "): " + reason + "\n", header: h}
}

// denyHost refuses a host the egress policy does not allow, saying how to
// allow it.
func (p *Proxy) denyHost(rec *record, reason string) *blocked {
	b := rec.deny(http.StatusForbidden, decisionDeniedHost, reason)
	if hint := p.cfg.Egress.Hint; hint != "" {
		b.body = strings.TrimSuffix(b.body, "\n") + "; " + hint + "\n"
	}
	return b
}

// removeHop drops hop-by-hop headers, including those the Connection
// header names (RFC 9110 7.6.1), as httputil.ReverseProxy does.
func removeHop(h http.Header) {
	for _, v := range h.Values("Connection") {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				h.Del(t)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

// validFields checks every header field name and value (RFC 9110 5.1, 5.5),
// and returns the first bad name.
func validFields(h http.Header) (string, bool) {
	for name, vals := range h {
		if !httpguts.ValidHeaderFieldName(name) {
			return name, false
		}
		for _, v := range vals {
			if !httpguts.ValidHeaderFieldValue(v) {
				return name, false
			}
		}
	}
	return "", true
}

func isUpgrade(req *http.Request) bool {
	for _, v := range req.Header.Values("Connection") {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), "upgrade") {
				return true
			}
		}
	}
	return req.Header.Get("Upgrade") != ""
}

// quoteHost shows a host the child sent, cut short so a huge header cannot
// flood the log.
func quoteHost(h string) string {
	if len(h) > 100 {
		h = h[:100] + "..."
	}
	return "\"" + strings.ToValidUTF8(h, "?") + "\""
}
