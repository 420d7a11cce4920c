package launcher

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cloak-dev/cloak/proxy"
	"github.com/cloak-dev/cloak/scrub"
)

// DoctorOptions is one `cloak doctor`.
type DoctorOptions struct {
	EnvFiles []string // as for cloak run
	FromEnv  []string
	Environ  []string // default os.Environ()
	Dir      string   // the working directory; default the process's
	Stdout   io.Writer
	// SkipSelfTest leaves out the trust self-test (it starts every client).
	SkipSelfTest bool
}

// Doctor checks what a `cloak run -- claude` here would meet and prints a
// report. It returns the number of problems found: things that make cloak
// leak or fail, not advice.
func Doctor(o DoctorOptions) (int, error) {
	if o.Environ == nil {
		o.Environ = os.Environ()
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Dir == "" {
		d, err := os.Getwd()
		if err != nil {
			return 0, fmt.Errorf("finding the working directory: %w", err)
		}
		o.Dir = d
	}
	d := &doctor{w: o.Stdout}
	d.claude(o.Environ)
	secrets := d.secrets(o)
	d.settings(o, secrets)
	if !o.SkipSelfTest {
		if err := d.trust(o.Environ); err != nil {
			return d.problems, err
		}
	}
	if d.problems == 0 {
		fmt.Fprintln(d.w, "\nno problems found")
	} else {
		fmt.Fprintf(d.w, "\n%d problem(s) found\n", d.problems)
	}
	return d.problems, nil
}

type doctor struct {
	w        io.Writer
	problems int
}

func (d *doctor) section(title string) { fmt.Fprintf(d.w, "\n%s\n", title) }

// line prints one finding: ok, info, warning (advice) or problem.
func (d *doctor) line(kind, msg string) {
	if kind == "problem" {
		d.problems++
	}
	fmt.Fprintf(d.w, "  %-8s %s\n", kind, msg)
}

func (d *doctor) claude(environ []string) {
	d.section("claude")
	path, err := exec.LookPath("claude")
	if err != nil {
		d.line("warning", "claude is not on PATH (cloak run -- claude needs it; the npm package is @anthropic-ai/claude-code)")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.Env = environ
	out, err := cmd.Output()
	if err != nil {
		d.line("problem", fmt.Sprintf("%s --version failed: %v", path, err))
		return
	}
	d.line("ok", fmt.Sprintf("%s: %s", path, strings.TrimSpace(string(out))))
}

// secrets says where the secrets come from, and whether a file the agent
// can read holds them.
func (d *doctor) secrets(o DoctorOptions) []scrub.Secret {
	d.section("secrets")
	run := Options{EnvFiles: o.EnvFiles}
	sources, err := run.sources()
	if err != nil {
		d.line("problem", err.Error())
		return nil
	}
	tree := gitTop(o.Dir)
	if tree == "" {
		tree = o.Dir
	}
	cfg, _ := configDir()
	home, _ := lookup(o.Environ, "HOME")
	var loaded []secret
	for _, s := range sources {
		p := s.path
		if !filepath.IsAbs(p) {
			p = filepath.Join(o.Dir, p)
		}
		fi, err := os.Stat(p)
		if err != nil {
			if s.explicit {
				d.line("problem", fmt.Sprintf("%s: %v", tildePath(p, home), pathErr(err)))
			} else {
				d.line("info", fmt.Sprintf("%s: not there", tildePath(p, home)))
			}
			continue
		}
		got, err := loadFiles([]source{{path: p, explicit: true}}, func(string) {})
		if err != nil {
			d.line("problem", err.Error())
			continue
		}
		loaded = merge(loaded, got)
		d.line("ok", fmt.Sprintf("%s: %s", tildePath(p, home), names(got)))
		if fi.Mode().Perm()&0o077 != 0 {
			d.line("warning", fmt.Sprintf("%s is readable by other users (mode %04o): chmod 600 %s", tildePath(p, home), fi.Mode().Perm(), p))
		}
		switch dest := filepath.Join(cfg, "secrets.env"); {
		case within(p, tree) && p == dest:
			d.line("problem", fmt.Sprintf("the working tree %s holds cloak's config dir: the agent works there and can read %s; run claude from a project directory instead",
				tildePath(tree, home), tildePath(p, home)))
		case within(p, tree):
			dest := filepath.Join(cfg, "secrets.env")
			d.line("problem", fmt.Sprintf("%s is inside the working tree %s: the agent works there and can read this file, real values included.\n"+
				"           Move it to the file cloak reads by default: mkdir -p %s && mv %s %s && chmod 600 %s\n"+
				"           (append instead if %s exists)",
				tildePath(p, home), tildePath(tree, home), tildePath(cfg, home), p, tildePath(dest, home), tildePath(dest, home), tildePath(dest, home)))
		}
	}
	if len(o.FromEnv) > 0 {
		got, err := fromEnv(o.FromEnv, func(k string) (string, bool) { return lookup(o.Environ, k) })
		if err != nil {
			d.line("problem", err.Error())
		} else {
			loaded = merge(loaded, got)
			d.line("ok", "cloak's environment (--from-env): "+names(got))
		}
	}
	have := map[string]bool{}
	for _, s := range loaded {
		have[s.name] = true
	}
	var exposed []string
	for name := range autoPresets {
		if v, ok := lookup(o.Environ, name); ok && v != "" && !have[name] {
			exposed = append(exposed, name)
		}
	}
	sort.Strings(exposed)
	for _, n := range exposed {
		d.line("problem", fmt.Sprintf("%s is set in this shell but cloak does not load it, so the agent would get it as is: add --from-env %s, or move it to %s", n, n, tildePath(filepath.Join(cfg, "secrets.env"), home)))
	}
	if len(loaded) == 0 {
		d.line("warning", "no secrets found: cloak would protect nothing (put them in "+tildePath(filepath.Join(cfg, "secrets.env"), home)+")")
	}
	var protected []secret
	for _, s := range loaded {
		if !s.isPlain() {
			protected = append(protected, s)
		}
	}
	user, explicit := userPolicyFile("")
	ruleMap := map[string][]proxy.Rule{}
	pol, err := loadPolicy(policySources{userFile: user, userExplicit: explicit, project: filepath.Join(o.Dir, projectPolicy)}, protected)
	if err != nil {
		d.line("problem", err.Error())
	} else {
		ruleMap = pol.rules()
	}
	var out []scrub.Secret
	for _, s := range loaded {
		if s.isPlain() {
			continue
		}
		if rs := ruleMap[s.name]; len(rs) > 0 {
			d.line("info", fmt.Sprintf("%s goes only to %s", s.name, describe(rs)))
		} else {
			d.line("warning", fmt.Sprintf("%s has no binding: the child gets a dummy that is never swapped unless you bind it in the policy file or with --bind %s=HOST", s.name, s.name))
		}
		dummy, err := scrub.Dummy(s.real, "")
		if err == nil {
			out = append(out, scrub.Secret{Name: s.name, Real: s.real, Dummy: dummy})
		}
	}
	return out
}

// settings lists the Claude settings that cloak overrides or cannot.
func (d *doctor) settings(o DoctorOptions, secrets []scrub.Secret) {
	d.section("claude settings")
	files := readClaudeSettings(o.Environ, o.Dir)
	// The environment a run gives claude: every variable cloak manages set.
	env := append([]string(nil), o.Environ...)
	for _, name := range claudeManaged() {
		env = scrub.Set(env, name, "(cloak's)")
	}
	run, err := claudeArgs(claudeInput{argv: []string{"claude"}, env: env, secrets: secrets, settings: files, dir: o.Dir})
	if err != nil {
		d.line("problem", err.Error())
		return
	}
	if len(files) == 0 {
		d.line("ok", "no settings files")
	}
	for _, w := range run.warnings {
		// A real value in a file, or a managed setting: cloak cannot fix
		// these for the agent. The rest cloak overrides on every run.
		if strings.Contains(w, "real value") || strings.Contains(w, "managed settings") {
			d.line("problem", w)
		} else {
			d.line("warning", w)
		}
	}
	if len(files) > 0 && len(run.warnings) == 0 {
		d.line("ok", fmt.Sprintf("%d settings file(s), none overrides cloak", len(files)))
	}
}

func (d *doctor) trust(environ []string) error {
	d.section("trust self-test (each client through a throwaway cloak proxy to a loopback HTTPS server)")
	results, err := TrustSelfTest(environ)
	if err != nil {
		return fmt.Errorf("trust self-test: %w", err)
	}
	tw := tabwriter.NewWriter(d.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  client\tbound host (swap)\tpassed-through host")
	var notes []string
	for _, r := range results {
		if !r.Installed {
			fmt.Fprintf(tw, "  %s\tnot installed\t-\n", r.Client)
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.Client, verdict(r.Bound), verdict(r.Passed))
		if r.Client == "node (built-in fetch)" && r.Bound != nil && r.Passed != nil {
			// Not cloak's to fix: the request never reaches the proxy.
			notes = append(notes, fmt.Sprintf("%s: %v: this Node's fetch ignores proxy variables (newer Node versions honour them with NODE_USE_ENV_PROXY=1, which cloak sets); use undici's EnvHttpProxyAgent (see docs/clients.md)", r.Client, r.Bound))
			continue
		}
		for i, e := range []error{r.Bound, r.Passed} {
			if e != nil {
				notes = append(notes, fmt.Sprintf("%s, %s: %v", r.Client, []string{"bound host", "passed-through host"}[i], e))
				d.problems++
			}
		}
	}
	_ = tw.Flush()
	for _, n := range notes {
		fmt.Fprintf(d.w, "  %s\n", n)
	}
	return nil
}

func verdict(err error) string {
	if err == nil {
		return "ok"
	}
	return "FAILS"
}

func names(ss []secret) string {
	if len(ss) == 0 {
		return "no secrets"
	}
	var n []string
	for _, s := range ss {
		n = append(n, s.name)
	}
	return strings.Join(n, ", ")
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// tildePath shortens a path under home for reading.
func tildePath(p, home string) string {
	if home != "" && within(p, home) {
		if rel, err := filepath.Rel(home, p); err == nil {
			return filepath.Join("~", rel)
		}
	}
	return p
}
