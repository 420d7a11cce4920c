package launcher

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/cloak-dev/cloak/proxy"
)

// ShowPolicy prints the effective policy for a run with these options:
// merged from presets, files and flags, each line with where it came
// from. It names secrets and never shows a value.
func ShowPolicy(o Options) error {
	o.defaults()
	in, err := o.load(func(string) {})
	if err != nil {
		return err
	}
	in.pol.show(o.Stdout)
	return nil
}

// ExplainPolicy says what cloak would do with one request: refuse it, and
// why, or which secrets it would inject where. It asks the very Policy the
// proxy decides by.
func ExplainPolicy(o Options, method, rawURL string) error {
	o.defaults()
	in, err := o.load(func(string) {})
	if err != nil {
		return err
	}
	pp := in.pol.proxyPolicy()
	v, err := pp.Decide(method, rawURL)
	if err != nil {
		return usage(err)
	}
	in.pol.explain(o.Stdout, rawURL, v, pp)
	return nil
}

func (pol *policy) show(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")) }

	row("files")
	if pol.userFile == "" && pol.project == "" {
		row("  (none: built-in presets only)")
	}
	if pol.userFile != "" {
		row("  "+pol.userFile, "the user's: sets the policy")
	}
	if pol.project != "" {
		row("  "+pol.project, "the project's: may only narrow it")
	}
	row("")
	row("egress")
	e := pol.egress
	row("  default", map[bool]string{false: "allow", true: "deny"}[e.denyByDefault], e.defaultFrom)
	row("  inspect", map[bool]string{false: "bound", true: "all"}[e.inspectAll], e.inspectFrom)
	for _, h := range e.allow {
		row("  allow", h.text, h.from)
	}
	for _, h := range e.deny {
		row("  deny", h.text, h.from)
	}
	if e.denyByDefault {
		row("  (hosts a secret is bound to are reachable too, unless denied)")
	}
	row("")
	row("secrets")
	if len(pol.loaded) == 0 {
		row("  (none loaded)")
	}
	for _, s := range pol.loaded {
		row("  " + s.name + " (loaded from " + s.source + ")")
		b := pol.bindings[s.name]
		if b == nil || len(b.rules) == 0 {
			why := "no binding"
			if b != nil {
				why = b.from
			}
			row("    never swapped: the child's dummy goes nowhere (" + why + ")")
			continue
		}
		for i, r := range b.rules {
			rn := fmt.Sprintf("    rule %d", i+1)
			row(rn, "hosts", hostList(r.Hosts), r.from[fHosts])
			row("", "methods", listOrAny(r.Methods), r.from[fMethods])
			row("", "paths", listOrAny(r.Paths), r.from[fPaths])
			row("", "places", listOrAny(r.Places), r.from[fPlaces])
		}
	}
	if len(pol.skipped) > 0 {
		row("")
		row("not loaded, so skipped")
		for _, s := range pol.skipped {
			row("  " + s)
		}
	}
	_ = tw.Flush()
}

func (pol *policy) explain(w io.Writer, rawURL string, v proxy.Verdict, pp proxy.Policy) {
	fmt.Fprintf(w, "%s %s\n", v.Method, rawURL)
	body := "refused (tripwire)"
	if v.BodyKeepsDummies() {
		body = "sent as it is (a bound host's body is the agent's context)"
	}
	switch v.Decision {
	case "denied-host":
		fmt.Fprintf(w, "refused (denied-host): %s\n%s\n", v.Reason, pp.Egress.Hint)
		return
	case "passed-through":
		fmt.Fprintf(w, "passed through untouched: %s; cloak does not decrypt it, and a dummy sent there stays a dummy\n", v.Reason)
		return
	case "allowed":
		fmt.Fprintf(w, "plain HTTP: forwarded, never given a real value; a dummy in the headers or URL: refused (tripwire); in the body: %s\n", body)
		return
	}
	fmt.Fprintf(w, "decrypted and checked: %s\n", v.Reason)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range pp.Secrets {
		places, anywhere := v.Places(s.Name)
		switch {
		case anywhere:
			fmt.Fprintf(tw, "  %s\tinjected wherever its dummy is\n", s.Name)
			continue
		case len(places) > 0:
			fmt.Fprintf(tw, "  %s\tinjected in: %s\n", s.Name, strings.Join(places, ", "))
		case len(s.Rules) == 0:
			fmt.Fprintf(tw, "  %s\tnever injected: it has no binding\n", s.Name)
		default:
			fmt.Fprintf(tw, "  %s\tnot injected here: its rules allow only %s\n", s.Name, describeRules(s.Rules))
		}
		fmt.Fprintf(tw, "\tits dummy anywhere else in the headers or URL: refused (tripwire); in the body: %s\n", body)
	}
	fmt.Fprintf(tw, "  (no dummy)\tforwarded as sent\n")
	_ = tw.Flush()
}

func hostList(hs []proxy.HostPattern) string {
	s := make([]string, len(hs))
	for i, h := range hs {
		s[i] = h.String()
	}
	return strings.Join(s, ", ")
}

func listOrAny(l []string) string {
	if len(l) == 0 {
		return "any"
	}
	return strings.Join(l, ", ")
}

// describeRules is a one-line summary of rules: "api.example.com GET,POST
// /v1/* in header:authorization; ...".
func describeRules(rs []proxy.Rule) string {
	var parts []string
	for _, r := range rs {
		p := hostList(r.Hosts)
		if len(r.Methods) > 0 {
			p += " " + strings.Join(r.Methods, ",")
		}
		if len(r.Paths) > 0 {
			p += " " + strings.Join(r.Paths, ",")
		}
		if len(r.Places) > 0 {
			p += " in " + strings.Join(r.Places, ",")
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}
