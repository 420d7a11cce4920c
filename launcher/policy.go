package launcher

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/cloak-dev/cloak/proxy"
)

// The policy of a run is built in layers, each acting on the result of the
// ones before:
//
//  1. built in: every host reachable, only bound hosts decrypted, and a
//     preset for each well-known secret name (presets.go);
//  2. the user's policy file (--policy FILE, else policy.toml in the config
//     dir): sets egress, and replaces the binding of each secret it names;
//  3. flags: --bind replaces the binding of its name, --inspect-all;
//  4. the project's .cloak.toml: may only narrow (narrow.go).
//
// Everything that widens where a secret may go or what may be reached comes
// from outside the working tree, which the agent can edit.

// projectPolicy is the project's own policy file, in the working directory.
const projectPolicy = ".cloak.toml"

// policy is the effective policy, each part labelled with where it came
// from, for `cloak policy show`.
type policy struct {
	egress   egressPolicy
	bindings map[string]*binding // by secret name; loaded secrets only
	loaded   []secret
	skipped  []string // entries of the config dir's file for secrets not loaded
	userFile string   // the user's policy file, if read
	project  string   // the project's policy file, if read
}

type egressPolicy struct {
	denyByDefault bool
	defaultFrom   string
	inspectAll    bool
	inspectFrom   string
	allow, deny   []hostEntry
}

// hostEntry is an egress pattern as written, parsed, and its origin.
type hostEntry struct {
	text string
	pat  proxy.HostPattern
	from string
}

// binding is where one secret may go: its rules, and what made them.
type binding struct {
	from  string
	rules []rule
}

// rule is a proxy rule with the origin of each of its fields.
type rule struct {
	proxy.Rule
	from [4]string // by field: hosts, methods, paths, places
}

const (
	fHosts = iota
	fMethods
	fPaths
	fPlaces
)

var fieldNames = [4]string{"hosts", "methods", "paths", "places"}

// policySources says where the policy comes from, besides the presets.
type policySources struct {
	userFile     string // "" for none
	userExplicit bool   // named by --policy: must exist and name only loaded secrets
	project      string // the project's file; "" for none
	binds        []string
	inspectAll   bool
}

// loadPolicy builds the effective policy for the loaded secrets. Every
// error names its file and line (or flag), and no real value.
func loadPolicy(src policySources, loaded []secret) (*policy, error) {
	pol, err := buildPolicy(src, loaded)
	if err != nil {
		return nil, redactErr(err, loaded)
	}
	return pol, nil
}

func buildPolicy(src policySources, loaded []secret) (*policy, error) {
	pol := &policy{
		egress:   egressPolicy{defaultFrom: "built in", inspectFrom: "built in"},
		bindings: map[string]*binding{},
		loaded:   loaded,
	}
	have := map[string]bool{}
	for _, s := range loaded {
		have[s.name] = true
		if name, ok := autoPresets[s.name]; ok {
			from := "preset " + name + ", built in for " + s.name
			pol.bindings[s.name] = &binding{from: from, rules: presetRules(presets[name], from)}
		}
	}

	if src.userFile != "" {
		f, err := readPolicyFile(src.userFile)
		switch {
		case err == nil:
			pol.userFile = src.userFile
			if err := pol.applyUser(f, have, src.userExplicit); err != nil {
				return nil, err
			}
		case src.userExplicit || !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}

	bound := map[string]bool{}
	for _, b := range src.binds {
		name, hosts, err := parseBind(b)
		if err != nil {
			return nil, usage(err)
		}
		if !have[name] {
			return nil, usage(fmt.Errorf("--bind %s: no secret named %s was loaded (check --env-file and --from-env)", name, name))
		}
		from := "--bind " + b
		if !bound[name] {
			pol.bindings[name] = &binding{from: from} // the first --bind for a name replaces its binding
			bound[name] = true
		}
		r := rule{Rule: proxy.Rule{Hosts: hosts}}
		r.from = [4]string{from, from, from, from}
		pol.bindings[name].rules = append(pol.bindings[name].rules, r)
	}
	if src.inspectAll {
		pol.egress.inspectAll, pol.egress.inspectFrom = true, "--inspect-all"
	}

	if src.project != "" {
		f, err := readPolicyFile(src.project)
		switch {
		case err == nil:
			pol.project = src.project
			if err := pol.narrow(f, have); err != nil {
				return nil, err
			}
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	return pol, nil
}

// applyUser applies the user's policy file: egress settings, and a binding
// for each secret it names, replacing the built-in one.
func (pol *policy) applyUser(f *policyFile, have map[string]bool, explicit bool) error {
	e := f.doc.Egress
	if f.defined("egress", "default") {
		deny, err := parseDefault(e.Default)
		if err != nil {
			return fmt.Errorf("%s: egress.default: %w", f.at("egress", "default"), err)
		}
		pol.egress.denyByDefault, pol.egress.defaultFrom = deny, f.at("egress", "default")
	}
	if f.defined("egress", "inspect") {
		all, err := parseInspect(e.Inspect)
		if err != nil {
			return fmt.Errorf("%s: egress.inspect: %w", f.at("egress", "inspect"), err)
		}
		pol.egress.inspectAll, pol.egress.inspectFrom = all, f.at("egress", "inspect")
	}
	var err error
	if pol.egress.allow, err = f.egressList("allow", e.Allow); err != nil {
		return err
	}
	if pol.egress.deny, err = f.egressList("deny", e.Deny); err != nil {
		return err
	}
	for _, name := range f.secretNames() {
		if !have[name] {
			if explicit {
				return fmt.Errorf("%s: no secret named %s was loaded (check --env-file and --from-env, or remove [secrets.%s])", f.at("secrets", name), name, name)
			}
			// The config dir's file serves every project; most name
			// secrets that this one does not load.
			pol.skipped = append(pol.skipped, name+" ("+f.at("secrets", name)+")")
			continue
		}
		b, err := f.binding(name, f.doc.Secrets[name])
		if err != nil {
			return err
		}
		pol.bindings[name] = b
	}
	return nil
}

// binding turns one [secrets.NAME] table into rules: the preset's, with any
// field given next to it replacing the preset's own, then one rule per
// [[secrets.NAME.rule]].
func (f *policyFile) binding(name string, d secretDoc) (*binding, error) {
	key := func(k ...string) []string { return append([]string{"secrets", name}, k...) }
	at := func(k ...string) string { return f.at(key(k...)...) }
	b := &binding{from: at()}
	lists := [4][]string{d.Hosts, d.Methods, d.Paths, d.Places}
	var given [4]bool
	for i, n := range fieldNames {
		given[i] = f.defined(key(n)...)
		if given[i] && len(lists[i]) == 0 {
			return nil, fmt.Errorf("%s: secrets.%s.%s is empty (%s)", at(n), name, n, emptyHint(i))
		}
	}
	top, err := f.ruleFields(lists, given, at)
	if err != nil {
		return nil, err
	}

	if f.defined(key("preset")...) {
		p, ok := presets[d.Preset]
		if !ok {
			return nil, fmt.Errorf("%s: unknown preset %q (known: %s)", at("preset"), d.Preset, presetNames())
		}
		from := "preset " + d.Preset + ", " + at("preset")
		rules := presetRules(p, from)
		for i := range rules {
			top.override(&rules[i], given)
			if len(rules[i].Hosts) == 0 {
				return nil, fmt.Errorf("%s: preset %s names no host: add hosts = [\"registry.example.com\"] next to it", at("preset"), d.Preset)
			}
		}
		b.rules = rules
	} else if given != [4]bool{} {
		if !given[fHosts] {
			return nil, fmt.Errorf("%s: secrets.%s has no hosts (add hosts = [...] or a preset)", at(), name)
		}
		b.rules = append(b.rules, top)
	}

	for i, rd := range d.Rules {
		rk := func(k ...string) []string { return key(append([]string{fmt.Sprintf("rule[%d]", i)}, k...)...) }
		rat := func(k ...string) string { return f.at(rk(k...)...) }
		rl := [4][]string{rd.Hosts, rd.Methods, rd.Paths, rd.Places}
		var rg [4]bool
		for j, v := range rl {
			rg[j] = v != nil
			if v != nil && len(v) == 0 {
				return nil, fmt.Errorf("%s: %s is empty (%s)", rat(fieldNames[j]), fieldNames[j], emptyHint(j))
			}
		}
		if !rg[fHosts] {
			return nil, fmt.Errorf("%s: [[secrets.%s.rule]] has no hosts", rat(), name)
		}
		r, err := f.ruleFields(rl, rg, rat)
		if err != nil {
			return nil, err
		}
		b.rules = append(b.rules, r)
	}
	if len(b.rules) == 0 {
		return nil, fmt.Errorf("%s: [secrets.%s] says nowhere the secret may go (give a preset, hosts, or [[secrets.%s.rule]])", at(), name, name)
	}
	return b, nil
}

func emptyHint(field int) string {
	if field == fHosts {
		return "a binding needs at least one host; remove the table to leave the secret unbound"
	}
	return "leave the key out to allow any"
}

// ruleFields parses the given fields into a rule whose fields name their
// line as origin.
func (f *policyFile) ruleFields(lists [4][]string, given [4]bool, at func(...string) string) (rule, error) {
	var r rule
	var err error
	if given[fHosts] {
		if r.Hosts, err = parseHosts(lists[fHosts]); err != nil {
			return r, fmt.Errorf("%s: hosts: %w", at("hosts"), err)
		}
	}
	if given[fMethods] {
		if r.Methods, err = parseMethods(lists[fMethods]); err != nil {
			return r, fmt.Errorf("%s: methods: %w", at("methods"), err)
		}
	}
	if given[fPaths] {
		if r.Paths, err = parsePaths(lists[fPaths]); err != nil {
			return r, fmt.Errorf("%s: paths: %w", at("paths"), err)
		}
	}
	if given[fPlaces] {
		if r.Places, err = parsePlaces(lists[fPlaces]); err != nil {
			return r, fmt.Errorf("%s: places: %w", at("places"), err)
		}
	}
	for i, n := range fieldNames {
		r.from[i] = at() // a field left out (any) comes from its table
		if given[i] {
			r.from[i] = at(n)
		}
	}
	return r, nil
}

// override puts the fields given in o into r.
func (o rule) override(r *rule, given [4]bool) {
	if given[fHosts] {
		r.Hosts, r.from[fHosts] = o.Hosts, o.from[fHosts]
	}
	if given[fMethods] {
		r.Methods, r.from[fMethods] = o.Methods, o.from[fMethods]
	}
	if given[fPaths] {
		r.Paths, r.from[fPaths] = o.Paths, o.from[fPaths]
	}
	if given[fPlaces] {
		r.Places, r.from[fPlaces] = o.Places, o.from[fPlaces]
	}
}

// presetRules makes a preset's rules; its host names are known to parse.
func presetRules(p preset, from string) []rule {
	out := make([]rule, 0, len(p.rules))
	for _, pr := range p.rules {
		hosts, _ := parseHosts(pr.hosts)
		out = append(out, rule{
			Rule: proxy.Rule{Hosts: hosts, Methods: pr.methods, Paths: pr.paths, Places: pr.places},
			from: [4]string{from, from, from, from},
		})
	}
	return out
}

// egressList parses egress.allow or egress.deny.
func (f *policyFile) egressList(name string, list []string) ([]hostEntry, error) {
	if !f.defined("egress", name) {
		return nil, nil
	}
	at := f.at("egress", name)
	if len(list) == 0 {
		return nil, fmt.Errorf("%s: egress.%s is empty (leave the key out instead)", at, name)
	}
	var out []hostEntry
	for _, s := range list {
		p, err := proxy.ParseEgressPattern(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%s: egress.%s: %w", at, name, err)
		}
		out = append(out, hostEntry{text: s, pat: p, from: at})
	}
	return out, nil
}

func parseDefault(s string) (deny bool, err error) {
	switch s {
	case "allow":
		return false, nil
	case "deny":
		return true, nil
	}
	return false, fmt.Errorf("%q: want \"allow\" or \"deny\"", s)
}

func parseInspect(s string) (all bool, err error) {
	switch s {
	case "bound":
		return false, nil
	case "all":
		return true, nil
	}
	return false, fmt.Errorf("%q: want \"bound\" or \"all\"", s)
}

func parseHosts(list []string) ([]proxy.HostPattern, error) {
	var out []proxy.HostPattern
	for _, h := range list {
		p, err := proxy.ParseHostPattern(strings.TrimSpace(h))
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func parseMethods(list []string) ([]string, error) {
	var out []string
	for _, m := range list {
		u := strings.ToUpper(strings.TrimSpace(m))
		if u == "" || strings.IndexFunc(u, func(r rune) bool { return !(r >= 'A' && r <= 'Z' || r == '-' || r == '_') }) >= 0 {
			return nil, fmt.Errorf("%q is not an HTTP method", m)
		}
		if !containsStr(out, u) {
			out = append(out, u)
		}
	}
	return out, nil
}

// parsePaths checks path patterns: "/exact" or "/prefix*", as the path is
// sent (escaped), without the query.
func parsePaths(list []string) ([]string, error) {
	for _, p := range list {
		switch {
		case !strings.HasPrefix(p, "/"):
			return nil, fmt.Errorf("%q: a path pattern starts with /", p)
		case strings.Contains(strings.TrimSuffix(p, "*"), "*"):
			return nil, fmt.Errorf("%q: only a final * is allowed (a prefix match)", p)
		case strings.ContainsAny(p, "?#"):
			return nil, fmt.Errorf("%q: a path pattern has no query or fragment", p)
		case strings.IndexFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
			return nil, fmt.Errorf("%q: spaces and control characters are not allowed", p)
		}
	}
	return list, nil
}

func parsePlaces(list []string) ([]string, error) {
	var out []string
	for _, p := range list {
		l := strings.ToLower(strings.TrimSpace(p))
		if err := proxy.ValidPlace(l); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// rules is each loaded secret's rules, for the proxy and the child's env.
func (pol *policy) rules() map[string][]proxy.Rule {
	out := map[string][]proxy.Rule{}
	for name, b := range pol.bindings {
		for _, r := range b.rules {
			out[name] = append(out[name], r.Rule)
		}
	}
	return out
}

// proxyEgress is the egress part of the proxy's config.
func (pol *policy) proxyEgress() proxy.Egress {
	e := proxy.Egress{DenyByDefault: pol.egress.denyByDefault, Hint: pol.hint()}
	for _, h := range pol.egress.allow {
		e.Allow = append(e.Allow, h.pat)
	}
	for _, h := range pol.egress.deny {
		e.Deny = append(e.Deny, h.pat)
	}
	return e
}

// hint tells a person who meets a denied host where to allow it.
func (pol *policy) hint() string {
	var files []string
	for _, f := range []string{pol.userFile, pol.project} {
		if f != "" {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		return "to allow it, change [egress] in your policy file (cloak policy show prints the policy)"
	}
	return "to allow it, change [egress] in " + strings.Join(files, " or ") + " (cloak policy show prints the policy)"
}

// proxyPolicy is the policy the proxy decides by. Secrets carry no value
// here: `policy explain` needs only names and rules.
func (pol *policy) proxyPolicy() proxy.Policy {
	p := proxy.Policy{Egress: pol.proxyEgress(), InspectAll: pol.egress.inspectAll}
	rules := pol.rules()
	for _, s := range pol.loaded {
		p.Secrets = append(p.Secrets, proxy.Secret{Name: s.name, Rules: rules[s.name]})
	}
	return p
}

// redactErr keeps real values out of an error: a policy file may quote
// anything, and a user may have pasted a key into one.
func redactErr(err error, loaded []secret) error {
	msg := err.Error()
	red := msg
	for _, s := range loaded {
		if s.real != "" {
			red = strings.ReplaceAll(red, s.real, "<redacted "+s.name+">")
		}
	}
	if red == msg {
		return err
	}
	if errors.Is(err, ErrUsage) {
		return usage(errors.New(red))
	}
	return errors.New(red)
}

// userPolicyFile is the policy file a run reads: --policy, else policy.toml
// in the config dir when it exists.
func userPolicyFile(flag string) (string, bool) {
	if flag != "" {
		return flag, true
	}
	if d, err := configDir(); err == nil {
		return filepath.Join(d, "policy.toml"), false
	}
	return "", false
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
