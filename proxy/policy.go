package proxy

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Egress says which hosts the child may reach through the proxy at all.
type Egress struct {
	// DenyByDefault refuses every host that is neither on Allow nor bound
	// to a secret. The zero value reaches every host not on Deny.
	DenyByDefault bool
	// Allow and Deny are host patterns; a pattern without a port matches
	// every port (see ParseEgressPattern). Deny wins over Allow and over
	// bindings, so a project can shut a host off whatever else says.
	Allow []HostPattern
	Deny  []HostPattern
	// Hint ends the body of a denied-host refusal: how a person allows the
	// host (which file to edit). The proxy knows no file names.
	Hint string
}

// Policy decides where the child may connect and where each secret's real
// value may go. The proxy decides every CONNECT and request with it, and
// `cloak policy explain` asks it the same questions, so the two answers
// cannot drift apart.
type Policy struct {
	Secrets    []Secret
	Minted     []MintRule // token endpoints and where the tokens they mint may go
	Egress     Egress
	InspectAll bool // decrypt every allowed HTTPS host, not only bound ones
}

// Route is the policy's answer for a connection to a host, before any
// request is seen.
type Route struct {
	// Decision is "denied-host", "intercepted" (HTTPS, decrypted and
	// checked), "passed-through" (HTTPS, spliced untouched) or "allowed"
	// (plain HTTP, checked; no real value ever goes over it).
	Decision string
	Reason   string
}

// Route decides a connection to host:port (host normalised) by scheme.
func (pol *Policy) Route(scheme, host string, port int) Route {
	if reason, ok := pol.egress(host, port); !ok {
		return Route{Decision: decisionDeniedHost, Reason: reason}
	}
	if scheme == "http" {
		return Route{Decision: decisionAllowed, Reason: "plain HTTP: checked, never given a real value"}
	}
	if pol.InspectAll {
		return Route{Decision: decisionIntercepted, Reason: "inspect = all: every allowed host is decrypted"}
	}
	if name := pol.boundName(host); name != "" {
		return Route{Decision: decisionIntercepted, Reason: "a binding of " + name + " names this host"}
	}
	return Route{Decision: decisionPassedThrough, Reason: "no binding for this host"}
}

// egress reports whether host:port may be reached, and if not, why.
func (pol *Policy) egress(host string, port int) (string, bool) {
	target := joinHostPort(host, port)
	for _, d := range pol.Egress.Deny {
		if d.Match(host, port) {
			return target + " matches egress deny " + d.String(), false
		}
	}
	if !pol.Egress.DenyByDefault {
		return "", true
	}
	for _, a := range pol.Egress.Allow {
		if a.Match(host, port) {
			return "", true
		}
	}
	// A host a secret is bound to is reachable: the binding says the
	// user means to talk to it.
	for _, s := range pol.Secrets {
		for _, r := range s.Rules {
			if r.allowsHost(host, port) {
				return "", true
			}
		}
	}
	return target + " is not on the egress allow list (egress default is deny)", false
}

// boundName names a secret bound to host on any port, or "". CONNECTs to
// such a host are decrypted on every port, so that a dummy sent to the
// wrong port is seen and refused rather than passed through.
func (pol *Policy) boundName(host string) string {
	named := func(rules []Rule) bool {
		for _, r := range rules {
			for _, h := range r.Hosts {
				if h.MatchName(host) {
					return true
				}
			}
		}
		return false
	}
	for _, s := range pol.Secrets {
		if named(s.Rules) {
			return s.Name
		}
	}
	// A token endpoint is decrypted so its answer can be read, and so are
	// the hosts its minted tokens may go to, so they can be swapped back.
	for _, m := range pol.Minted {
		if m.Host.MatchName(host) || named(m.Rules) {
			return m.Name
		}
	}
	return ""
}

// Verdict is the policy's answer for one request before its headers are
// seen: how the connection is routed, and where each secret may go in it.
type Verdict struct {
	Route
	Method string
	Scheme string
	Host   string // normalised
	Port   int
	Path   string // escaped, without the query
	pol    *Policy
}

// ErrBadURL is returned by Decide for a URL the proxy would not accept.
var ErrBadURL = errors.New("bad URL")

// Decide routes a request for rawURL (http or https, absolute) with method.
func (pol *Policy) Decide(method, rawURL string) (Verdict, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Verdict{}, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	def := 0
	switch u.Scheme {
	case "https":
		def = 443
	case "http":
		def = 80
	default:
		return Verdict{}, fmt.Errorf("%w: %q: want an http:// or https:// URL", ErrBadURL, rawURL)
	}
	host, port, err := SplitHostPort(u.Host, def)
	if err != nil {
		return Verdict{}, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return Verdict{
		Route:  pol.Route(u.Scheme, host, port),
		Method: strings.ToUpper(method),
		Scheme: u.Scheme,
		Host:   host,
		Port:   port,
		Path:   path,
		pol:    pol,
	}, nil
}

// May reports whether the real value of the named secret may be placed at
// place ("header:x-api-key", "query:key", "body", ...) in this request. It
// asks the same question as the proxy's swap (Secret.allows), and only
// inside a decrypted tunnel: over plain HTTP nothing is ever swapped.
func (v Verdict) May(name, place string) bool {
	if v.Decision != decisionIntercepted {
		return false
	}
	s := v.pol.secret(name)
	return s != nil && s.allows(v.Method, v.Host, v.Port, v.Path, place)
}

// Places lists where the named secret may go in this request: the places
// of every rule that admits it (anywhere=true when such a rule names none),
// or nothing when the secret may not go into this request at all.
func (v Verdict) Places(name string) (places []string, anywhere bool) {
	s := v.pol.secret(name)
	if v.Decision != decisionIntercepted || s == nil {
		return nil, false
	}
	for _, r := range s.Rules {
		if !r.allowsRequest(v.Method, v.Host, v.Port, v.Path) {
			continue
		}
		if len(r.Places) == 0 {
			return nil, true
		}
		for _, p := range r.Places {
			if !contains(places, p) {
				places = append(places, p)
			}
		}
	}
	return places, false
}

// Outcome is the decision the proxy records for this request when the
// dummy of the named secret sits at place (name "" for a request that holds
// no dummy): denied-host, passed-through, allowed or tripwire. An allowed
// dummy is swapped when May says so, and otherwise forwarded as it is.
func (v Verdict) Outcome(name, place string) string {
	switch v.Decision {
	case decisionDeniedHost, decisionPassedThrough:
		return v.Decision
	}
	if name == "" || v.May(name, place) || place == "body" && v.BodyKeepsDummies() {
		return decisionAllowed
	}
	return decisionTripwire
}

// BodyKeepsDummies reports whether a dummy in this request's body that may
// not be swapped there goes on as it is rather than tripping: so it does
// on a host a secret is bound to, whose request body (a model's context)
// legitimately carries what the agent printed (see prepareBody).
func (v Verdict) BodyKeepsDummies() bool { return v.pol.bodyKeepsDummies(v.Host) }

func (pol *Policy) bodyKeepsDummies(host string) bool { return pol.boundName(host) != "" }

func (pol *Policy) secret(name string) *Secret {
	for i := range pol.Secrets {
		if pol.Secrets[i].Name == name {
			return &pol.Secrets[i]
		}
	}
	return nil
}

// ParseEgressPattern parses an egress host pattern: like ParseHostPattern,
// but a pattern without a port matches every port (Port 0), since egress
// is about reaching a host at all.
func ParseEgressPattern(s string) (HostPattern, error) {
	p, err := ParseHostPattern(s)
	if err != nil {
		return p, err
	}
	if !hasPort(strings.TrimPrefix(s, "*.")) {
		p.Port = 0
	}
	return p, nil
}

// hasPort reports whether a host pattern names a port: "h:1", "[::1]:1".
func hasPort(s string) bool {
	if strings.HasPrefix(s, "[") {
		return strings.Contains(s, "]:")
	}
	return strings.Count(s, ":") == 1
}
