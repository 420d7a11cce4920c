package proxy

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// ErrBadHost is returned for a host name that cloak refuses to compare:
// empty, malformed, or not valid IDNA.
var ErrBadHost = errors.New("bad host")

// hostProfile is strict on purpose: a look-alike name that only a lenient
// mapping would fold onto a bound host must stay a different host.
var hostProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.StrictDomainName(false), // allow "_" as in some real service names
	idna.Transitional(false),
)

// NormalizeHost returns host as cloak compares it: lower case, without a
// trailing dot, IDNA names in their ASCII (punycode) form, IPv6 literals
// without brackets. It takes a bare host, not host:port.
func NormalizeHost(host string) (string, error) {
	h := strings.TrimSuffix(host, ".")
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	if h == "" {
		return "", fmt.Errorf("%w: empty host", ErrBadHost)
	}
	if ip := net.ParseIP(h); ip != nil {
		return ip.String(), nil
	}
	// Invalid UTF-8 would reach IDNA as U+FFFD and come out as a punycode
	// name that no longer reads back.
	if !utf8.ValidString(h) || strings.ContainsAny(h, "[]:/\\@ %\t\r\n") {
		return "", fmt.Errorf("%w: %q", ErrBadHost, quoteBytes(host))
	}
	a, err := hostProfile.ToASCII(h)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrBadHost, host, err)
	}
	a = strings.ToLower(a)
	if a == "" || strings.HasPrefix(a, ".") || strings.HasSuffix(a, ".") || strings.Contains(a, "..") || !hostChars(a) {
		return "", fmt.Errorf("%w: %q", ErrBadHost, quoteBytes(host))
	}
	return a, nil
}

// hostChars reports whether an ASCII host name holds only the letters,
// digits, '-', '_' and '.' that DNS names use; anything else (a NUL, a
// control byte) could make two parsers see two different hosts.
func hostChars(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// quoteBytes keeps an error message printable whatever the host held.
func quoteBytes(s string) string {
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

// SplitHostPort parses "host[:port]" (IPv6 in brackets), normalises the host
// and fills in defPort when the port is missing.
func SplitHostPort(hostport string, defPort int) (string, int, error) {
	host, portStr := hostport, ""
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		if p == "" {
			return "", 0, fmt.Errorf("%w: empty port in %q", ErrBadHost, quoteBytes(hostport))
		}
		host, portStr = h, p
	} else if strings.Count(hostport, ":") == 1 && !strings.HasPrefix(hostport, "[") {
		return "", 0, fmt.Errorf("%w: %q", ErrBadHost, hostport)
	}
	h, err := NormalizeHost(host)
	if err != nil {
		return "", 0, err
	}
	port := defPort
	if portStr != "" {
		n, err := strconv.Atoi(portStr)
		if err != nil || n < 1 || n > 65535 {
			return "", 0, fmt.Errorf("%w: bad port in %q", ErrBadHost, hostport)
		}
		port = n
	}
	return h, port, nil
}

// joinHostPort is net.JoinHostPort with an int port.
func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// HostPattern is one entry of a binding's host list: an exact name, or
// "*.example.com" for every name below example.com (not example.com itself),
// each with a port (443 unless the pattern names one; 0, every port, only in
// egress lists).
type HostPattern struct {
	Host     string // normalised; for a wildcard, the suffix without "*."
	Wildcard bool
	Port     int
}

// ParseHostPattern parses "api.example.com", "*.example.com" or either with
// ":PORT".
func ParseHostPattern(s string) (HostPattern, error) {
	wild := strings.HasPrefix(s, "*.")
	if wild {
		s = s[2:]
	}
	if strings.Contains(s, "*") {
		return HostPattern{}, fmt.Errorf("%w: %q: only a leading \"*.\" wildcard is allowed", ErrBadHost, s)
	}
	h, port, err := SplitHostPort(s, 443)
	if err != nil {
		return HostPattern{}, err
	}
	if wild && net.ParseIP(h) != nil {
		return HostPattern{}, fmt.Errorf("%w: wildcard over an IP address %q", ErrBadHost, s)
	}
	return HostPattern{Host: h, Wildcard: wild, Port: port}, nil
}

// MatchName reports whether the normalised host name matches, port aside.
func (p HostPattern) MatchName(host string) bool {
	if p.Wildcard {
		return strings.HasSuffix(host, "."+p.Host)
	}
	return host == p.Host
}

// Match reports whether the normalised host and port match. Port 0 in the
// pattern matches every port (egress patterns, see ParseEgressPattern).
func (p HostPattern) Match(host string, port int) bool {
	return (p.Port == 0 || port == p.Port) && p.MatchName(host)
}

func (p HostPattern) String() string {
	s := p.Host
	if p.Wildcard {
		s = "*." + s
	}
	if p.Port != 443 && p.Port != 0 {
		s = joinHostPort(s, p.Port)
	}
	return s
}
