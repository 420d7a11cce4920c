package launcher

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/cloak-dev/cloak/proxy"
)

// parseResolves parses --resolve HOST:PORT:ADDR[:PORT2] as curl does:
// connections for HOST:PORT go to ADDR, on PORT2 when given, else PORT.
// ADDR may be an IPv6 literal in brackets.
func parseResolves(list []string) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range list {
		from, to, err := parseResolve(s)
		if err != nil {
			return nil, fmt.Errorf("--resolve %q: %v (want HOST:PORT:ADDR[:PORT2])", s, err)
		}
		out[from] = to
	}
	return out, nil
}

func parseResolve(s string) (from, to string, err error) {
	host, rest, ok := strings.Cut(s, ":")
	if !ok {
		return "", "", fmt.Errorf("missing port")
	}
	port, rest, ok := strings.Cut(rest, ":")
	if !ok {
		return "", "", fmt.Errorf("missing address")
	}
	var addr, port2 string
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 {
			return "", "", fmt.Errorf("unclosed [ in address")
		}
		addr, rest = rest[1:end], rest[end+1:]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return "", "", fmt.Errorf("junk after address")
			}
			port2 = rest[1:]
		}
	} else {
		addr, port2, _ = strings.Cut(rest, ":")
	}
	if net.ParseIP(addr) == nil {
		return "", "", fmt.Errorf("%q is not an IP address", addr)
	}
	pn, err := strconv.Atoi(port)
	if err != nil || pn < 1 || pn > 65535 {
		return "", "", fmt.Errorf("bad port %q", port)
	}
	h, _, err := proxy.SplitHostPort(host, pn)
	if err != nil {
		return "", "", err
	}
	if port2 == "" {
		port2 = port
	}
	if p2, err := strconv.Atoi(port2); err != nil || p2 < 1 || p2 > 65535 {
		return "", "", fmt.Errorf("bad port %q", port2)
	}
	return net.JoinHostPort(h, port), net.JoinHostPort(addr, port2), nil
}
