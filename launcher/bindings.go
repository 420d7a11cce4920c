package launcher

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cloak-dev/cloak/proxy"
)

// preset is a built-in binding for a well-known variable name.
type preset struct {
	hosts  []string
	places []string
}

// Model APIs get the real value only in their auth headers: their request
// body is the model's context (tool results included), and a swap there
// would hand the real key to the model.
var presets = map[string]preset{
	"ANTHROPIC_API_KEY":       {hosts: []string{"api.anthropic.com"}, places: []string{"header:x-api-key", "header:authorization"}},
	"ANTHROPIC_AUTH_TOKEN":    {hosts: []string{"api.anthropic.com"}, places: []string{"header:x-api-key", "header:authorization"}},
	"CLAUDE_CODE_OAUTH_TOKEN": {hosts: []string{"api.anthropic.com"}, places: []string{"header:x-api-key", "header:authorization"}},
	"OPENAI_API_KEY":          {hosts: []string{"api.openai.com"}, places: []string{"header:authorization"}},
	// git over HTTPS sends the token to github.com as Basic credentials
	// (x-access-token:TOKEN); the API takes it in Authorization.
	"GITHUB_TOKEN": {hosts: []string{"api.github.com", "github.com"}, places: []string{"header:authorization", "basic-auth"}},
	"GH_TOKEN":     {hosts: []string{"api.github.com", "github.com"}, places: []string{"header:authorization", "basic-auth"}},
}

// parseBind parses --bind NAME=HOST[,HOST...].
func parseBind(s string) (string, []proxy.HostPattern, error) {
	name, list, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.TrimSpace(list) == "" {
		return "", nil, fmt.Errorf("--bind %q: want NAME=HOST[,HOST...]", s)
	}
	var hosts []proxy.HostPattern
	for _, h := range strings.Split(list, ",") {
		p, err := proxy.ParseHostPattern(strings.TrimSpace(h))
		if err != nil {
			return "", nil, fmt.Errorf("--bind %s: %w", name, err)
		}
		hosts = append(hosts, p)
	}
	return name, hosts, nil
}

// rules works out each loaded secret's rules from the presets and --bind
// flags. A --bind replaces the preset for its name and allows every place
// in the request toward its hosts.
func rules(loaded []secret, binds []string) (map[string][]proxy.Rule, error) {
	out := map[string][]proxy.Rule{}
	have := map[string]bool{}
	for _, s := range loaded {
		have[s.name] = true
		if p, ok := presets[s.name]; ok {
			var hosts []proxy.HostPattern
			for _, h := range p.hosts {
				hp, err := proxy.ParseHostPattern(h)
				if err != nil {
					return nil, err
				}
				hosts = append(hosts, hp)
			}
			out[s.name] = []proxy.Rule{{Hosts: hosts, Places: p.places}}
		}
	}
	bound := map[string]bool{}
	for _, b := range binds {
		name, hosts, err := parseBind(b)
		if err != nil {
			return nil, err
		}
		if !have[name] {
			return nil, fmt.Errorf("--bind %s: no secret named %s was loaded (check --env-file and --from-env)", name, name)
		}
		if !bound[name] {
			out[name] = nil // the first --bind for a name replaces its preset
			bound[name] = true
		}
		out[name] = append(out[name], proxy.Rule{Hosts: hosts})
	}
	return out, nil
}

// describe is a one-line summary of where a secret may go, for -v.
func describe(rs []proxy.Rule) string {
	var hosts []string
	for _, r := range rs {
		for _, h := range r.Hosts {
			hosts = append(hosts, h.String())
		}
	}
	sort.Strings(hosts)
	return strings.Join(hosts, ",")
}
