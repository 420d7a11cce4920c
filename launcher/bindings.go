package launcher

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cloak-dev/cloak/proxy"
)

// parseBind parses --bind NAME=HOST[,HOST...]. A --bind allows every place
// in the request toward its hosts: it is the user's own, explicit word.
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
