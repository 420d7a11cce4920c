// Package launcher runs one cloak session end to end: it loads the secrets,
// gives each a dummy, starts the proxy with a fresh CA, starts the child with
// a scrubbed environment wired to the proxy, waits for it, and cleans up.
//
// # Security
//
// The child's environment is checked last of all for every real value (raw
// and encoded) and the child is not started if one is found. Nothing the
// launcher prints or writes holds a real value: secrets are named, never
// shown, and the files it writes hold only public certificates and dummies.
package launcher

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/cloak-dev/cloak/ca"
	"github.com/cloak-dev/cloak/proxy"
	"github.com/cloak-dev/cloak/scrub"
)

// ErrUsage marks errors in how cloak was called (exit status 2).
var ErrUsage = errors.New("usage")

// usageError is an error in how cloak was called; it reads as its cause.
type usageError struct{ error }

func (usageError) Is(target error) bool { return target == ErrUsage }
func (e usageError) Unwrap() error      { return e.error }

func usage(err error) error { return usageError{err} }

// ExitError is an error with the exit status cloak should end with.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Options is one `cloak run`.
type Options struct {
	Command    []string // the child and its arguments
	EnvFiles   []string // secrets files; none: the defaults (see defaultSources)
	FromEnv    []string // secrets taken from cloak's own environment
	Binds      []string // NAME=HOST[,HOST...]
	Policy     string   // the user's policy file; default: policy.toml in the config dir
	ProjectDir string   // where .cloak.toml is read from; default: the working directory
	Resolve    []string // HOST:PORT:ADDR[:PORT2]
	UpstreamCA []string // PEM files of extra roots for upstreams
	AuditLog   string   // default: audit.log in the state dir
	InspectAll bool     // intercept every host, not only bound ones
	Verbose    bool

	// Environ is cloak's environment (default os.Environ()); Stdin, Stdout
	// and Stderr default to the process's own.
	Environ []string
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
}

// Run runs the session and returns the child's exit status. An error means
// cloak failed; when it failed before the child started, the child never ran.
func Run(o Options) (int, error) {
	if err := harden(); err != nil {
		return 1, fmt.Errorf("protecting cloak's memory from the child: %w", err)
	}
	limitMemory()
	o.defaults()
	say := func(kind, msg string) { fmt.Fprintf(o.Stderr, "cloak: %s: %s\n", kind, msg) }
	warn := func(msg string) { say("warning", msg) }
	info := func(msg string) {
		if o.Verbose {
			say("info", msg)
		}
	}
	if len(o.Command) == 0 {
		return 2, usage(errors.New("no command to run (cloak run [flags] -- CMD [ARGS...])"))
	}
	path, err := exec.LookPath(o.Command[0])
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return 127, &ExitError{Code: 127, Err: fmt.Errorf("%s: command not found", o.Command[0])}
		}
		return 126, &ExitError{Code: 126, Err: fmt.Errorf("%s: %w", o.Command[0], errors.Unwrap(err))}
	}

	if id, ok := insideSession(o.Environ); ok {
		return runNested(o, path, id, say)
	}

	// Inputs, all checked before anything starts.
	in, err := o.load(warn)
	if err != nil {
		if errors.Is(err, ErrUsage) {
			return 2, err
		}
		return 1, err
	}
	protected, plain, ruleMap := in.protected, in.plain, in.pol.rules()
	for _, f := range []string{in.pol.userFile, in.pol.project} {
		if f != "" {
			info("policy file: " + f)
		}
	}
	resolve, err := parseResolves(o.Resolve)
	if err != nil {
		return 2, usage(err)
	}
	upstreamPEM, roots, err := upstreamRoots(o.UpstreamCA)
	if err != nil {
		return 1, err
	}
	state, err := stateDir()
	if err != nil {
		return 1, fmt.Errorf("finding the state directory: %w", err)
	}
	secrets, err := assignDummies(filepath.Join(state, "dummies.json"), protected)
	if err != nil {
		return 1, err
	}
	if ppid, names := parentHolds(protected); len(names) > 0 {
		warn(fmt.Sprintf("the process that started cloak (pid %d) still holds %s in its environment, where the agent can read it (/proc/%d/environ); start cloak with exec (exec cloak run ...), or pass secrets in a file", ppid, strings.Join(names, ", "), ppid))
	}
	if len(protected) == 0 {
		warn("no secrets loaded: the child runs with the proxy but nothing to protect (use --env-file or --from-env)")
	}
	for _, s := range protected {
		if len(ruleMap[s.name]) == 0 {
			warn(fmt.Sprintf("%s has no binding: the child gets a dummy that is never swapped (bind it with --bind %s=HOST)", s.name, s.name))
		} else {
			info(fmt.Sprintf("%s (%s) may go to %s", s.name, s.source, describe(ruleMap[s.name])))
		}
	}

	session, err := newSessionID()
	if err != nil {
		return 1, err
	}
	auditPath := o.AuditLog
	if auditPath == "" {
		auditPath = filepath.Join(state, "audit.log")
	}
	audit, err := openAudit(auditPath)
	if err != nil {
		return 1, err
	}
	defer audit.Close()
	info("audit log: " + auditPath)

	// The run's CA and its files, public material only.
	authority, err := ca.New("cloak session " + session)
	if err != nil {
		return 1, fmt.Errorf("making the session CA: %w", err)
	}
	cleanStaleTempDirs()
	dir, err := os.MkdirTemp("", fmt.Sprintf("cloak-%d-", os.Getpid()))
	if err != nil {
		return 1, fmt.Errorf("making the session's temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	extraPath, bundlePath, err := writeTrust(dir, authority, upstreamPEM, o.Environ)
	if err != nil {
		return 1, err
	}

	pp := in.pol.proxyPolicy()
	px, err := proxy.New(proxy.Config{
		Secrets:       proxySecrets(secrets, ruleMap),
		Leaf:          authority.Leaf,
		UpstreamRoots: roots,
		Resolve:       resolve,
		InspectAll:    pp.InspectAll,
		Egress:        pp.Egress,
		Minted:        pp.Minted,
		MintDummy:     mintDummy,
		Audit:         audit,
		Session:       session,
	})
	if err != nil {
		return 1, fmt.Errorf("starting the proxy: %w", err)
	}
	defer px.Close()
	info("proxy on " + px.Addr() + ", session " + session)

	env, err := childEnv(childEnvInput{
		parent: o.Environ, secrets: secrets, plain: plain,
		proxyURL: px.URL().String(), extraPath: extraPath, bundlePath: bundlePath,
		session: session, rules: ruleMap, warn: warn,
	})
	if err != nil {
		return 1, err
	}
	argv, err := forClaude(o.Command, env, secrets, dir, warn)
	if err != nil {
		return 1, err
	}
	// The start line is written before the child starts: a log that cannot
	// be written (a full disk) stops the run here, never silently later.
	if err := audit.event(session, "start", map[string]string{"command": filepath.Base(o.Command[0])}); err != nil {
		return 1, fmt.Errorf("audit log: cannot write to it: %w (free some space, or choose another path with --audit-log)", err)
	}

	code, err := runChild(path, argv, env, o.Stdin, o.Stdout, o.Stderr)
	if err != nil {
		return code, err
	}
	_ = px.Close()
	_ = audit.event(session, "end", map[string]string{"exit": fmt.Sprint(code)})
	report(px.Summary(), session, auditPath, o.AuditLog == "", o.Verbose, say)
	if lost, why := audit.failures(); lost > 0 {
		warn(fmt.Sprintf("%d audit line(s) could not be written to %s: %v", lost, auditPath, pathErr(why)))
	}
	return code, nil
}

func (o *Options) defaults() {
	if o.Environ == nil {
		o.Environ = os.Environ()
	}
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
}

// sources lists the secrets files: the ones named, or else secrets.env in
// the user's config dir and .env in the working directory, if they exist.
func (o *Options) sources() ([]source, error) {
	if len(o.EnvFiles) > 0 {
		var out []source
		for _, f := range o.EnvFiles {
			out = append(out, source{path: f, explicit: true})
		}
		return out, nil
	}
	var out []source
	if d, err := configDir(); err == nil {
		out = append(out, source{path: filepath.Join(d, "secrets.env")})
	}
	return append(out, source{path: ".env"}), nil
}

// inputs are a run's checked inputs.
type inputs struct {
	protected []secret // secrets: the child gets dummies
	plain     []secret // values too short to be secrets, passed as they are
	pol       *policy
}

// load reads the secrets and the policy, checking everything before
// anything runs. Errors in how cloak was called are usage errors.
func (o *Options) load(warn func(string)) (inputs, error) {
	var in inputs
	sources, err := o.sources()
	if err != nil {
		return in, err
	}
	fileSecrets, err := loadFiles(sources, warn)
	if err != nil {
		return in, err
	}
	envSecrets, err := fromEnv(o.FromEnv, func(k string) (string, bool) { return lookup(o.Environ, k) })
	if err != nil {
		return in, usage(err)
	}
	for _, s := range merge(fileSecrets, envSecrets) {
		if s.isPlain() {
			in.plain = append(in.plain, s)
		} else {
			in.protected = append(in.protected, s)
		}
	}
	user, explicit := userPolicyFile(o.Policy)
	dir := o.ProjectDir
	if dir == "" {
		dir = "."
	}
	in.pol, err = loadPolicy(policySources{
		userFile:     user,
		userExplicit: explicit,
		project:      filepath.Join(dir, projectPolicy),
		binds:        o.Binds,
		inspectAll:   o.InspectAll,
	}, in.protected)
	return in, err
}

// proxySecrets joins dummies and rules into what the proxy needs.
func proxySecrets(secrets []scrub.Secret, ruleMap map[string][]proxy.Rule) []proxy.Secret {
	out := make([]proxy.Secret, 0, len(secrets))
	for _, s := range secrets {
		out = append(out, proxy.Secret{Name: s.Name, Dummy: s.Dummy, Real: s.Real, Rules: ruleMap[s.Name]})
	}
	return out
}

// upstreamRoots reads --upstream-ca files into the system pool.
func upstreamRoots(files []string) ([]byte, *x509.CertPool, error) {
	if len(files) == 0 {
		return nil, nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	var all []byte
	for _, f := range files {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("--upstream-ca: %w", pathErr(err))
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("--upstream-ca %s: no PEM certificate in the file", f)
		}
		all = append(append(all, pem...), '\n')
	}
	return all, pool, nil
}

// writeTrust writes the CA for NODE_EXTRA_CA_CERTS and the combined bundle
// for variables that replace the trust store. Both also hold the roots the
// user already added (the parent's NODE_EXTRA_CA_CERTS and SSL_CERT_FILE,
// and --upstream-ca), so hosts passed through untouched still verify.
func writeTrust(dir string, authority *ca.CA, upstreamPEM []byte, parent []string) (extraPath, bundlePath string, err error) {
	extra := append([]byte(nil), upstreamPEM...)
	if p, ok := lookup(parent, "NODE_EXTRA_CA_CERTS"); ok && p != "" {
		if b, err := os.ReadFile(p); err == nil {
			extra = append(append(extra, b...), '\n')
		}
	}
	var base []byte
	if p, ok := lookup(parent, "SSL_CERT_FILE"); ok && p != "" {
		base, _ = os.ReadFile(p)
	}
	if len(strings.TrimSpace(string(base))) == 0 {
		base, _, err = ca.SystemRoots()
		if err != nil {
			return "", "", fmt.Errorf("reading the system's root certificates: %w", err)
		}
	}
	bundle, err := authority.Bundle(base, extra)
	if err != nil {
		return "", "", err
	}
	extraPath = filepath.Join(dir, "ca.pem")
	bundlePath = filepath.Join(dir, "bundle.pem")
	if err := os.WriteFile(extraPath, append(extra, authority.PEM()...), 0o600); err != nil {
		return "", "", fmt.Errorf("writing the session CA: %w", err)
	}
	if err := os.WriteFile(bundlePath, bundle, 0o600); err != nil {
		return "", "", fmt.Errorf("writing the CA bundle: %w", err)
	}
	return extraPath, bundlePath, nil
}

func newSessionID() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making a session id: %w", err)
	}
	return hex.EncodeToString(b), nil
}
