package proxy

import (
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzNormalizeHost: a normalised host is lower-case ASCII without a
// trailing dot or any character that could smuggle a second host, and
// normalising it again changes nothing.
func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{
		"api.anthropic.com", "API.Anthropic.COM.", "api.anthropic.com..", "\u0430pi.anthropic.com",
		"xn--pi-7kc.anthropic.com", "\uff41pi.anthropic.com", "[::1]", "::ffff:127.0.0.1", "127.1",
		"a@b", "a b", "a\x00b", "ex%61mple.com", "*.example.com", "_dmarc.example.com", "\u200bapi.anthropic.com",
		"api.anthropic.com\u3002", "ａｐｉ．ａｎｔｈｒｏｐｉｃ．ｃｏｍ", "-a.com", "a..b", ".", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		n, err := NormalizeHost(host)
		if err != nil {
			return
		}
		if again, err := NormalizeHost(n); err != nil || again != n {
			t.Fatalf("NormalizeHost(%q) = %q, and again %q (%v)", host, n, again, err)
		}
		if ip := net.ParseIP(n); ip != nil {
			return
		}
		for _, c := range []byte(n) {
			if c >= 0x80 || c >= 'A' && c <= 'Z' || strings.IndexByte("[]:/\\@ %\t\r\n\x00", c) >= 0 {
				t.Fatalf("NormalizeHost(%q) = %q holds %q", host, n, c)
			}
		}
		if strings.HasSuffix(n, ".") || strings.HasPrefix(n, ".") || strings.Contains(n, "..") {
			t.Fatalf("NormalizeHost(%q) = %q has an empty label", host, n)
		}
	})
}

// FuzzHostPatternMatch (bindings' and egress patterns): a pattern matches only its own host, or for
// "*.name" only hosts below it; the port must be the pattern's; and for an
// ASCII host, only the host spelled with other letter case or a trailing
// dot, never another name that normalisation folded onto it.
func FuzzHostPatternMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"api.anthropic.com", "api.anthropic.com:443"},
		{"api.anthropic.com", "API.ANTHROPIC.COM.:443"},
		{"api.anthropic.com", "api.anthropic.com.evil.com"},
		{"api.anthropic.com", "evilapi.anthropic.com"},
		{"*.github.com", "api.github.com"},
		{"*.github.com", "github.com"},
		{"*.github.com", "evilgithub.com"},
		{"api.example.com:8443", "api.example.com:8443"},
		{"api.example.com:8443", "api.example.com"},
		{"[::1]:8080", "[::1]:8080"},
		{"127.0.0.1", "127.1"},
		{"api.anthropic.com", "\u0430pi.anthropic.com"},
		{"api.anthropic.com", "\uff41pi.anthropic.com"},
		{"xn--pi-7kc.anthropic.com", "\u0430pi.anthropic.com"},
		{"*.*.com", "a.b.com"},
		{"*.", "a."},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, hostport string) {
		p, err := ParseHostPattern(pattern)
		if err != nil {
			return
		}
		if q, err := ParseHostPattern(p.String()); err != nil || q != p {
			t.Fatalf("pattern %q reads back from %q as %+v (%v)", pattern, p.String(), q, err)
		}
		// An egress pattern is the same pattern, on every port unless it
		// names one.
		e, err := ParseEgressPattern(pattern)
		if err != nil || e.Host != p.Host || e.Wildcard != p.Wildcard || e.Port != 0 && e.Port != p.Port {
			t.Fatalf("egress pattern %q = %+v (%v), host pattern %+v", pattern, e, err, p)
		}
		h, port, err := SplitHostPort(hostport, 443)
		if err == nil && e.Match(h, port) != p.MatchName(h) && (e.Port == 0 || port == p.Port) {
			t.Fatalf("egress pattern %q and host pattern disagree on %q", pattern, hostport)
		}
		if err != nil || !p.MatchName(h) {
			return
		}
		switch {
		case !p.Wildcard && h != p.Host:
			t.Fatalf("%q matched %q (%q)", pattern, hostport, h)
		case p.Wildcard && (h == p.Host || !strings.HasSuffix(h, "."+p.Host)):
			t.Fatalf("%q matched %q (%q), which is not below it", pattern, hostport, h)
		}
		if p.Match(h, port) != (port == p.Port) {
			t.Fatalf("%q on port %d matched %q on port %d", pattern, p.Port, hostport, port)
		}
		raw := hostport
		if hh, _, err := net.SplitHostPort(hostport); err == nil {
			raw = hh
		}
		raw = strings.TrimSuffix(strings.Trim(raw, "[]"), ".")
		if isASCII(raw) && net.ParseIP(raw) == nil {
			if lower := strings.ToLower(raw); lower != h {
				t.Fatalf("ASCII host %q normalised to %q, not just lower-cased", hostport, h)
			}
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// FuzzParseBasic: Proxy-Authorization parsing never panics, and accepts
// only "Basic" with base64 of "user:pass"; the proxy admits a header only
// if it holds exactly the session's credentials.
func FuzzParseBasic(f *testing.F) {
	for _, s := range []string{
		"Basic " + base64.StdEncoding.EncodeToString([]byte("cloak:secret-pass")),
		"basic " + base64.StdEncoding.EncodeToString([]byte("cloak:secret-pass")),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("cloak:secret-pass:x")),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("cloak")),
		"Basic " + base64.RawStdEncoding.EncodeToString([]byte("cloak:secret-pas")),
		"Basic  Y2xvYWs6c2VjcmV0LXBhc3M=  ", "Bearer x", "Basic", "Basic =", "", "Basic\tY2xvYWs6",
		"Basic Y2xvYWs6c2VjcmV0LXBhc3M=\x00",
	} {
		f.Add(s)
	}
	p := &Proxy{user: "cloak", pass: "secret-pass"}
	f.Fuzz(func(t *testing.T, v string) {
		user, pass, ok := parseBasic(v)
		if ok {
			if strings.Contains(user, ":") {
				t.Fatalf("parseBasic(%q): user %q holds a colon", v, user)
			}
			scheme, cred, _ := strings.Cut(strings.TrimSpace(v), " ")
			raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
			if !strings.EqualFold(scheme, "basic") || err != nil || string(raw) != user+":"+pass {
				t.Fatalf("parseBasic(%q) = %q, %q without holding them", v, user, pass)
			}
		}
		req := &http.Request{Header: http.Header{"Proxy-Authorization": {v}}}
		if p.authorized(req) != (ok && user == "cloak" && pass == "secret-pass") {
			t.Fatalf("authorized(%q) = %v with user %q", v, !ok, user)
		}
	})
}

// TestHostFuzzFinds are fuzzing finds, kept as regressions: each was
// accepted as a host name once.
func TestHostFuzzFinds(t *testing.T) {
	for _, h := range []string{
		"a\x00b",      // control characters passed the lenient IDNA profile
		"api\x7f.com", // so did DEL
		".0",          // a leading empty label
		"\xc70",       // invalid UTF-8 became a punycode name that does not read back
	} {
		if n, err := NormalizeHost(h); err == nil {
			t.Errorf("NormalizeHost(%q) = %q, want an error", h, n)
		}
		if p, err := ParseHostPattern(h); err == nil {
			t.Errorf("ParseHostPattern(%q) = %+v, want an error", h, p)
		}
	}
}
