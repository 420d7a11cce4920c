package launcher

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
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
	say("info", fmt.Sprintf("already inside cloak session %s; running %s directly", id, filepath.Base(o.Command[0])))
	if len(o.EnvFiles)+len(o.FromEnv)+len(o.Binds)+len(o.Resolve)+len(o.UpstreamCA) > 0 || o.AuditLog != "" || o.InspectAll {
		say("warning", "the outer session's secrets, bindings and audit log apply; this run's flags are ignored")
	}
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
