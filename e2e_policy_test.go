package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// policySession is a session with the user's policy in cloak's config dir
// and a project file in the working directory.
func policySession(t *testing.T, project string) (*session, string) {
	t.Helper()
	u := newUpstream(t, nil)
	real := randomReal("sk-ant-api03-", 60)
	s := newSession(t, u, map[string]string{"ANTHROPIC_API_KEY": real})
	cfg := filepath.Join(s.home, "config", "cloak")
	if err := os.MkdirAll(cfg, 0o700); err != nil {
		t.Fatal(err)
	}
	user := "[egress]\ndefault = \"deny\"\nallow = [\"unbound.test\"]\n"
	if err := os.WriteFile(filepath.Join(cfg, "policy.toml"), []byte(user), 0o600); err != nil {
		t.Fatal(err)
	}
	s.dir = filepath.Join(s.home, "project")
	if err := os.Mkdir(s.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, ".cloak.toml"), []byte(project), 0o600); err != nil {
		t.Fatal(err)
	}
	return s, real
}

// cloak runs another cloak command in the session's surroundings.
func (s *session) cloak(args ...string) result {
	s.t.Helper()
	cmd := exec.Command(cloakBin, args...)
	cmd.Env, cmd.Dir = s.env(), s.workDir()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatal(err)
	}
	r := result{stdout: out.String(), stderr: errb.String(), code: code}
	s.assertNoLeak(r.stdout, r.stderr)
	return r
}

// TestPolicyWithCurl: the user's policy (egress deny) and a project file
// that narrows the Anthropic key to /v1/messages, with curl as the child;
// then policy show, explain and audit on what happened.
func TestPolicyWithCurl(t *testing.T) {
	need(t, "curl")
	s, real := policySession(t, "[egress]\ndeny = [\"unbound.test\"]\n\n[secrets.ANTHROPIC_API_KEY]\npaths = [\"/v1/messages*\"]\n")
	r := s.run(nil, "sh", "-c", `
		code() { curl -s -o /dev/null -w '%{http_code}\n' "$@" || true; }
		code -H "x-api-key: $ANTHROPIC_API_KEY" -d '{}' "https://api.anthropic.com/v1/messages?beta=true"
		code -H "x-api-key: $ANTHROPIC_API_KEY" https://api.anthropic.com/v1/models
		code https://unbound.test/
		code https://evil.test/`)
	if r.code != 0 {
		t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
	}
	// curl prints 000 for a CONNECT it could not make.
	if got := strings.Fields(r.stdout); strings.Join(got, " ") != "200 403 000 000" {
		t.Fatalf("status codes %v, want 200 403 000 000\nstderr: %s", got, r.stderr)
	}
	reqs := s.upstream.requests()
	if len(reqs) != 1 || reqs[0].Header.Get("X-Api-Key") != real || !strings.HasPrefix(reqs[0].URI, "/v1/messages") {
		t.Fatalf("upstream saw %d requests, want only the messages call with the real key", len(reqs))
	}
	if !strings.Contains(r.stderr, "cloak: warning: refused 3 request(s) (2 denied-host, 1 tripwire); first: tripwire: GET api.anthropic.com:443/v1/models") {
		t.Errorf("end-of-run summary:\n%s", r.stderr)
	}

	show := s.cloak("policy", "show", "--env-file", s.envFile)
	for _, want := range []string{"default  deny", "deny     unbound.test", "/v1/messages*", "narrowed by " + filepath.Join(".", ".cloak.toml") + " line 5"} {
		if show.code != 0 || !strings.Contains(show.stdout, want) {
			t.Errorf("policy show (exit %d) lacks %q:\n%s%s", show.code, want, show.stdout, show.stderr)
		}
	}
	explain := s.cloak("policy", "explain", "--env-file", s.envFile, "GET", "https://api.anthropic.com/v1/models")
	if explain.code != 0 || !strings.Contains(explain.stdout, "ANTHROPIC_API_KEY  not injected here") {
		t.Errorf("policy explain (exit %d):\n%s%s", explain.code, explain.stdout, explain.stderr)
	}
	denied := s.cloak("policy", "explain", "--env-file", s.envFile, "GET", "https://evil.test/")
	if !strings.Contains(denied.stdout, "refused (denied-host): evil.test:443 is not on the egress allow list") {
		t.Errorf("policy explain evil.test:\n%s", denied.stdout)
	}

	alerts := s.cloak("audit", "--audit-log", s.audit, "--alerts")
	lines := strings.Split(strings.TrimSpace(alerts.stdout), "\n")
	if alerts.code != 0 || len(lines) != 3 || !strings.Contains(lines[1], " ! tripwire ") || !strings.Contains(lines[1], "https://api.anthropic.com/v1/models") {
		t.Errorf("cloak audit --alerts (exit %d):\n%s%s", alerts.code, alerts.stdout, alerts.stderr)
	}
	if strings.Contains(alerts.stdout, "\x1b[") {
		t.Error("colour written to a pipe")
	}
	all := s.cloak("audit", "--audit-log", s.audit, "--json")
	if n := strings.Count(all.stdout, "\n"); n != len(s.auditLines()) {
		t.Errorf("cloak audit --json printed %d lines, the log has %d", n, len(s.auditLines()))
	}
}

// TestProjectFileCannotWidenARun: a widening .cloak.toml stops the run
// before the child starts, naming the line.
func TestProjectFileCannotWidenARun(t *testing.T) {
	s, _ := policySession(t, "# from the agent\n[egress]\ndefault = \"allow\"\n")
	marker := filepath.Join(s.home, "child-ran")
	r := s.run(nil, "sh", "-c", "touch "+marker)
	if r.code != 1 || !strings.Contains(r.stderr, `.cloak.toml line 3: egress.default = "allow" would widen the policy`) {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the child ran")
	}
	show := s.cloak("policy", "show", "--env-file", s.envFile)
	if show.code != 1 || !strings.Contains(show.stderr, "would widen") {
		t.Errorf("policy show: exit %d\n%s", show.code, show.stderr)
	}
}
