package launcher

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"

	"github.com/cloak-dev/cloak/scrub"
)

// insideSession reports the id of the cloak session this process already
// runs in. It takes all of CLOAK=1, a session id of cloak's own form and a
// proxy on loopback with cloak's user name, so that a stray CLOAK=1 in a
// shell does not switch protection off.
func insideSession(env []string) (string, bool) {
	if v, _ := lookup(env, "CLOAK"); v != "1" {
		return "", false
	}
	id, _ := lookup(env, "CLOAK_SESSION")
	if b, err := hex.DecodeString(id); err != nil || len(b) != 6 {
		return "", false
	}
	raw, _ := lookup(env, "https_proxy")
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.User.Username() != "cloak" {
		return "", false
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return "", false
	}
	return id, true
}

// runNested runs the command directly under the session cloak is already
// in: its environment holds only dummies and points at that session's
// proxy, which keeps swapping and refusing for it. A second proxy would
// only have to be chained to the first.
func runNested(o Options, path, id string, say func(kind, msg string)) (int, error) {
	if err := nestedSafe(o, id); err != nil {
		return 1, err
	}
	if len(o.EnvFiles)+len(o.FromEnv)+len(o.Binds)+len(o.Resolve)+len(o.UpstreamCA) > 0 || o.AuditLog != "" || o.InspectAll {
		say("warning", "the outer session's secrets, bindings and audit log apply; this run's flags are ignored")
	}
	say("info", fmt.Sprintf("already inside cloak session %s; running %s directly", id, filepath.Base(o.Command[0])))
	// The Anthropic dummies this session holds, for claude's --settings.
	var held []scrub.Secret
	for _, n := range anthropicKeys {
		if v, ok := lookup(o.Environ, n); ok && v != "" {
			held = append(held, scrub.Secret{Name: n, Dummy: v})
		}
	}
	argv, err := forClaude(o.Command, o.Environ, held, func(m string) { say("warning", m) })
	if err != nil {
		return 1, err
	}
	return runChild(path, argv, o.Environ, o.Stdin, o.Stdout, o.Stderr)
}

// nestedSafe refuses to run a command directly when the environment that
// claims to be a cloak session holds a real value cloak would protect: the
// markers can be copied into a shell outside cloak, and a value taken with
// --from-env inside a session is the outer session's dummy, nothing else.
func nestedSafe(o Options, id string) error {
	sources, err := o.sources()
	if err != nil {
		return err
	}
	loaded, err := loadFiles(sources, func(string) {})
	if err != nil {
		return err
	}
	var stored dummyFile
	if state, err := stateDir(); err == nil {
		if b, err := os.ReadFile(filepath.Join(state, "dummies.json")); err == nil {
			_ = json.Unmarshal(b, &stored)
		}
	}
	for _, n := range o.FromEnv {
		if v, ok := lookup(o.Environ, n); ok && v != "" {
			loaded = append(loaded, secret{name: n, real: v})
		}
	}
	for _, s := range loaded {
		if s.isPlain() || stored.Dummies[s.name] == s.real {
			continue
		}
		if len(scrub.Leaks(o.Environ, []scrub.Secret{{Name: s.name, Real: s.real}})) > 0 {
			return fmt.Errorf("the environment says this is cloak session %s, but %s in it is not cloak's dummy (a real value?); not running %s (unset CLOAK, or start it from a shell outside cloak)", id, s.name, filepath.Base(o.Command[0]))
		}
	}
	return nil
}
