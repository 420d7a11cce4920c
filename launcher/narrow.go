package launcher

import (
	"fmt"
	"strings"

	"github.com/cloak-dev/cloak/proxy"
)

// narrow applies the project's policy file, which sits in the working tree
// where the agent can write: it may only take away. It may add egress
// denies, set the egress default to deny, inspect every host, and restrict
// a bound secret's hosts, methods, paths and places to ones it already
// has. Anything else is a widening line, and an error naming it, so a
// project file written by an agent fails loudly instead of being ignored.
func (pol *policy) narrow(f *policyFile, have map[string]bool) error {
	widen := func(at, what string) error {
		return fmt.Errorf("%s: %s would widen the policy: %s sits in the working tree, which the agent can edit, and may only narrow it (put this in the policy file in cloak's config dir, or pass --policy)", at, what, projectPolicy)
	}
	e := f.doc.Egress
	wasDeny := pol.egress.denyByDefault
	if f.defined("egress", "default") {
		at := f.at("egress", "default")
		deny, err := parseDefault(e.Default)
		if err != nil {
			return fmt.Errorf("%s: egress.default: %w", at, err)
		}
		if !deny && wasDeny {
			return widen(at, `egress.default = "allow"`)
		}
		if deny {
			pol.egress.denyByDefault, pol.egress.defaultFrom = true, at
		}
	}
	if f.defined("egress", "inspect") {
		at := f.at("egress", "inspect")
		all, err := parseInspect(e.Inspect)
		if err != nil {
			return fmt.Errorf("%s: egress.inspect: %w", at, err)
		}
		if !all && pol.egress.inspectAll {
			return widen(at, `egress.inspect = "bound"`)
		}
		if all {
			pol.egress.inspectAll, pol.egress.inspectFrom = true, at
		}
	}
	deny, err := f.egressList("deny", e.Deny)
	if err != nil {
		return err
	}
	pol.egress.deny = append(pol.egress.deny, deny...)
	allow, err := f.egressList("allow", e.Allow)
	if err != nil {
		return err
	}
	if allow != nil {
		// Under a deny default, each host allowed here must already be
		// reachable; the list then replaces the user's, keeping fewer.
		if wasDeny {
			for _, a := range allow {
				if !pol.reachable(a.pat) {
					return widen(a.from, fmt.Sprintf("egress.allow %q", a.text))
				}
			}
		}
		pol.egress.allow = allow
	}

	for _, name := range f.secretNames() {
		if err := pol.narrowSecret(f, name, have, widen); err != nil {
			return err
		}
	}
	return nil
}

// reachable reports whether the user's egress already lets every host of
// p through (under a deny default): an allow entry or a binding covers it.
func (pol *policy) reachable(p proxy.HostPattern) bool {
	for _, a := range pol.egress.allow {
		if hostCovers(a.pat, p) {
			return true
		}
	}
	for _, b := range pol.bindings {
		for _, r := range b.rules {
			for _, h := range r.Hosts {
				if hostCovers(h, p) {
					return true
				}
			}
		}
	}
	return false
}

func (pol *policy) narrowSecret(f *policyFile, name string, have map[string]bool, widen func(at, what string) error) error {
	key := func(k ...string) []string { return append([]string{"secrets", name}, k...) }
	at := func(k ...string) string { return f.at(key(k...)...) }
	if !have[name] {
		return fmt.Errorf("%s: no secret named %s was loaded, so this narrows nothing (check the name)", at(), name)
	}
	d := f.doc.Secrets[name]
	if f.defined(key("preset")...) {
		return widen(at("preset"), "a preset")
	}
	if len(d.Rules) > 0 {
		return widen(f.at(key("rule[0]")...), "a [[secrets."+name+".rule]] table")
	}
	b := pol.bindings[name]
	if b == nil || len(b.rules) == 0 {
		return widen(at(), "a binding for "+name+" (it has none)")
	}
	var given [4]bool
	lists := [4][]string{d.Hosts, d.Methods, d.Paths, d.Places}
	for i, n := range fieldNames {
		given[i] = f.defined(key(n)...)
		if given[i] && len(lists[i]) == 0 {
			return fmt.Errorf("%s: secrets.%s.%s is empty (%s)", at(n), name, n, emptyHint(i))
		}
	}
	r, err := f.ruleFields(lists, given, at)
	if err != nil {
		return err
	}

	// Every entry must be within what the secret may already do.
	for _, h := range r.Hosts {
		if !b.any(func(x rule) bool { return anyHost(x.Hosts, func(o proxy.HostPattern) bool { return hostCovers(o, h) }) }) {
			return widen(at("hosts"), fmt.Sprintf("host %q for %s", h.String(), name))
		}
	}
	for _, m := range r.Methods {
		if !b.any(func(x rule) bool { return len(x.Methods) == 0 || containsStr(x.Methods, m) }) {
			return widen(at("methods"), fmt.Sprintf("method %s for %s", m, name))
		}
	}
	for _, p := range r.Paths {
		if !b.any(func(x rule) bool {
			return len(x.Paths) == 0 || anyStr(x.Paths, func(o string) bool { return pathCovers(o, p) })
		}) {
			return widen(at("paths"), fmt.Sprintf("path %q for %s", p, name))
		}
	}
	for _, p := range r.Places {
		if !b.any(func(x rule) bool {
			return len(x.Places) == 0 || anyStr(x.Places, func(o string) bool { return placeCovers(o, p) })
		}) {
			return widen(at("places"), fmt.Sprintf("place %q for %s", p, name))
		}
	}

	// Each rule keeps what both it and the project allow; a rule left
	// with nothing in a field is dropped.
	var kept []rule
	for _, x := range b.rules {
		if given[fHosts] {
			x.Hosts = meet(x.Hosts, r.Hosts, hostCovers)
			x.from[fHosts] += "; narrowed by " + r.from[fHosts]
		}
		if given[fMethods] {
			x.Methods = meetList(x.Methods, r.Methods, func(a, b string) bool { return a == b })
			x.from[fMethods] += "; narrowed by " + r.from[fMethods]
		}
		if given[fPaths] {
			x.Paths = meetList(x.Paths, r.Paths, pathCovers)
			x.from[fPaths] += "; narrowed by " + r.from[fPaths]
		}
		if given[fPlaces] {
			x.Places = meetList(x.Places, r.Places, placeCovers)
			x.from[fPlaces] += "; narrowed by " + r.from[fPlaces]
		}
		if len(x.Hosts) == 0 || given[fMethods] && len(x.Methods) == 0 ||
			given[fPaths] && len(x.Paths) == 0 || given[fPlaces] && len(x.Places) == 0 {
			continue
		}
		kept = append(kept, x)
	}
	b.rules = kept
	if len(kept) == 0 {
		b.from += "; nothing left after " + at()
	}
	return nil
}

func (b *binding) any(f func(rule) bool) bool {
	for _, r := range b.rules {
		if f(r) {
			return true
		}
	}
	return false
}

// meet keeps, of two pattern lists, what both admit: for each pair, the
// narrower one when one covers the other.
func meet[T comparable](have, want []T, covers func(outer, inner T) bool) []T {
	var out []T
	add := func(v T) {
		for _, o := range out {
			if o == v {
				return
			}
		}
		out = append(out, v)
	}
	for _, h := range have {
		for _, w := range want {
			switch {
			case covers(h, w):
				add(w)
			case covers(w, h):
				add(h)
			}
		}
	}
	return out
}

// meetList is meet for a rule field where an empty list means "any".
func meetList(have, want []string, covers func(outer, inner string) bool) []string {
	if len(have) == 0 {
		return append([]string(nil), want...)
	}
	return meet(have, want, covers)
}

// hostCovers reports whether every host and port inner matches, outer
// matches too.
func hostCovers(outer, inner proxy.HostPattern) bool {
	if outer.Port != 0 && outer.Port != inner.Port {
		return false
	}
	if !outer.Wildcard {
		return !inner.Wildcard && inner.Host == outer.Host
	}
	return inner.Host == outer.Host && inner.Wildcard || strings.HasSuffix(inner.Host, "."+outer.Host)
}

// pathCovers: "/v1/*" covers "/v1/messages*" and "/v1/models"; an exact
// path covers only itself.
func pathCovers(outer, inner string) bool {
	if p, ok := strings.CutSuffix(outer, "*"); ok {
		return strings.HasPrefix(strings.TrimSuffix(inner, "*"), p)
	}
	return outer == inner
}

// placeCovers: "header" covers "header:x-api-key".
func placeCovers(outer, inner string) bool {
	if outer == inner {
		return true
	}
	kind, _, _ := strings.Cut(inner, ":")
	return !strings.Contains(outer, ":") && outer == kind
}

func anyHost(list []proxy.HostPattern, f func(proxy.HostPattern) bool) bool {
	for _, h := range list {
		if f(h) {
			return true
		}
	}
	return false
}

func anyStr(list []string, f func(string) bool) bool {
	for _, s := range list {
		if f(s) {
			return true
		}
	}
	return false
}
