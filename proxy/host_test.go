package proxy

import (
	"errors"
	"testing"
)

func TestNormalizeHost(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{in: "api.anthropic.com", want: "api.anthropic.com"},
		{in: "API.Anthropic.COM", want: "api.anthropic.com"},
		{in: "api.anthropic.com.", want: "api.anthropic.com"},
		{in: "[::1]", want: "::1"},
		{in: "::FFFF:127.0.0.1", want: "127.0.0.1"},
		{in: "bücher.example", want: "xn--bcher-kva.example"},
		{in: "аpi.anthropic.com", want: "xn--pi-6kc.anthropic.com"}, // Cyrillic а: a different host
		{in: "", bad: true},
		{in: ".", bad: true},
		{in: "api..anthropic.com", bad: true},
		{in: "api.anthropic.com..", bad: true},
		{in: "api.anthropic.com:443", bad: true},
		{in: "user@api.anthropic.com", bad: true},
		{in: "api.anthropic.com/x", bad: true},
		{in: "api anthropic.com", bad: true},
		{in: "api.anthropic.com\x00.evil", bad: true},
		{in: "api.anthropic.com%2eevil", bad: true},
	} {
		got, err := NormalizeHost(tc.in)
		if tc.bad {
			if err == nil || !errors.Is(err, ErrBadHost) {
				t.Errorf("%q: got %q, %v; want ErrBadHost", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestHostPatternMatchesOnlyItsHosts(t *testing.T) {
	exact, _ := ParseHostPattern("api.anthropic.com")
	wild, _ := ParseHostPattern("*.github.com")
	port, _ := ParseHostPattern("git.example.test:8443")
	for _, tc := range []struct {
		p    HostPattern
		host string
		port int
		want bool
	}{
		{exact, "api.anthropic.com", 443, true},
		{exact, "api.anthropic.com", 8443, false},
		{exact, "api.anthropic.com.evil.com", 443, false},
		{exact, "evilapi.anthropic.com", 443, false},
		{exact, "anthropic.com", 443, false},
		{exact, "x.api.anthropic.com", 443, false},
		{exact, "xn--pi-6kc.anthropic.com", 443, false},
		{wild, "api.github.com", 443, true},
		{wild, "a.b.github.com", 443, true},
		{wild, "github.com", 443, false},
		{wild, "evilgithub.com", 443, false},
		{wild, "github.com.evil.test", 443, false},
		{port, "git.example.test", 8443, true},
		{port, "git.example.test", 443, false},
	} {
		if got := tc.p.Match(tc.host, tc.port); got != tc.want {
			t.Errorf("%s matches %s:%d = %v, want %v", tc.p, tc.host, tc.port, got, tc.want)
		}
	}
}

func TestParseHostPatternRejects(t *testing.T) {
	for _, in := range []string{"", "*", "*.", "a*.b.com", "*.*.b.com", "b.*.com", "*.127.0.0.1", "h.test:0", "h.test:70000", "h.test:x"} {
		if p, err := ParseHostPattern(in); err == nil {
			t.Errorf("%q accepted as %v", in, p)
		}
	}
}

func TestSplitHostPort(t *testing.T) {
	for _, tc := range []struct {
		in   string
		host string
		port int
		bad  bool
	}{
		{in: "api.anthropic.com:443", host: "api.anthropic.com", port: 443},
		{in: "api.anthropic.com", host: "api.anthropic.com", port: 443},
		{in: "API.anthropic.com.:8443", host: "api.anthropic.com", port: 8443},
		{in: "[::1]:443", host: "::1", port: 443},
		{in: "::1", host: "::1", port: 443},
		{in: "api.anthropic.com:443@evil.test:443", bad: true},
		{in: "api.anthropic.com:", bad: true},
		{in: "api.anthropic.com:-1", bad: true},
	} {
		h, p, err := SplitHostPort(tc.in, 443)
		if tc.bad {
			if err == nil {
				t.Errorf("%q accepted as %s:%d", tc.in, h, p)
			}
			continue
		}
		if err != nil || h != tc.host || p != tc.port {
			t.Errorf("%q: got %s:%d %v", tc.in, h, p, err)
		}
	}
}
