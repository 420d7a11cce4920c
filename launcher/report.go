package launcher

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cloak-dev/cloak/proxy"
)

// report prints, after the child is gone (the terminal is the child's
// while it runs), what the proxy refused: one line with the counts and the
// first refusal, and with -v the counts of everything and each refusal.
func report(s proxy.Summary, session, auditPath string, defaultPath, verbose bool, say func(kind, msg string)) {
	see := "cloak audit --session " + session
	if !defaultPath {
		see += " --audit-log " + auditPath
	}
	if verbose {
		say("info", fmt.Sprintf("%d request(s) and tunnel(s): %s (audit log: %s)", s.Requests, counts(s.ByDecision, func(string) bool { return true }), auditPath))
		for _, r := range s.Refusals {
			say("info", "refused "+r)
		}
		if more := s.Refused - len(s.Refusals); more > 0 {
			say("info", fmt.Sprintf("... and %d more refusal(s): %s", more, see))
		}
	}
	if s.Refused > 0 {
		refusal := func(d string) bool {
			switch d {
			case "allowed", "intercepted", "passed-through":
				return false
			}
			return true
		}
		say("warning", fmt.Sprintf("refused %d request(s) (%s); first: %s (%s)", s.Refused, counts(s.ByDecision, refusal), s.First, see))
	}
}

// counts is "3 allowed, 1 tripwire", largest first.
func counts(by map[string]int, keep func(string) bool) string {
	type kv struct {
		k string
		v int
	}
	var l []kv
	for k, v := range by {
		if keep(k) {
			l = append(l, kv{k, v})
		}
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v || l[i].v == l[j].v && l[i].k < l[j].k })
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = fmt.Sprintf("%d %s", e.v, e.k)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
