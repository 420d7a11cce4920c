package launcher

import (
	"strings"
	"testing"

	"github.com/cloak-dev/cloak/proxy"
)

func TestParseResolve(t *testing.T) {
	for _, tc := range []struct {
		in, from, to, err string
	}{
		{in: "api.anthropic.com:443:127.0.0.1", from: "api.anthropic.com:443", to: "127.0.0.1:443"},
		{in: "api.anthropic.com:443:127.0.0.1:8443", from: "api.anthropic.com:443", to: "127.0.0.1:8443"},
		{in: "API.Anthropic.com.:443:127.0.0.1:8443", from: "api.anthropic.com:443", to: "127.0.0.1:8443"},
		{in: "h.test:443:[::1]:9000", from: "h.test:443", to: "[::1]:9000"},
		{in: "h.test:443:[::1]", from: "h.test:443", to: "[::1]:443"},
		{in: "h.test:443", err: "missing address"},
		{in: "h.test", err: "missing port"},
		{in: "h.test:x:127.0.0.1", err: "bad port"},
		{in: "h.test:443:not-an-ip", err: "not an IP"},
		{in: "h.test:443:127.0.0.1:99999", err: "bad port"},
		{in: "h.test:443:[::1", err: "unclosed"},
	} {
		from, to, err := parseResolve(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || from != tc.from || to != tc.to {
			t.Errorf("%q: got %q → %q (%v), want %q → %q", tc.in, from, to, err, tc.from, tc.to)
		}
	}
}

func TestRulesPresetsAndBinds(t *testing.T) {
	loaded := []secret{{name: "ANTHROPIC_API_KEY"}, {name: "MY_TOKEN"}, {name: "GITHUB_TOKEN"}}
	rules := func(loaded []secret, binds []string) (map[string][]proxy.Rule, error) {
		pol, err := loadPolicy(policySources{binds: binds}, loaded)
		if err != nil {
			return nil, err
		}
		return pol.rules(), nil
	}
	r, err := rules(loaded, []string{"MY_TOKEN=api.example.test,*.example.org", "GITHUB_TOKEN=ghe.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if got := describe(r["ANTHROPIC_API_KEY"]); got != "api.anthropic.com" {
		t.Errorf("preset hosts %q", got)
	}
	if p := r["ANTHROPIC_API_KEY"][0].Places; len(p) != 2 {
		t.Errorf("model API preset must limit places to auth headers, got %v", p)
	}
	if got := describe(r["MY_TOKEN"]); got != "*.example.org,api.example.test" {
		t.Errorf("bind hosts %q", got)
	}
	if got := describe(r["GITHUB_TOKEN"]); got != "ghe.example.test" {
		t.Errorf("--bind must replace the preset, got %q", got)
	}
	if len(r["GITHUB_TOKEN"][0].Places) != 0 {
		t.Error("--bind must allow every place")
	}
	for _, bad := range []string{"NOPE=api.example.test", "MY_TOKEN", "MY_TOKEN=", "=h.test", "MY_TOKEN=a*.b.test", "MY_TOKEN=h.test:0"} {
		if _, err := rules(loaded, []string{bad}); err == nil {
			t.Errorf("--bind %q accepted", bad)
		}
	}
}
