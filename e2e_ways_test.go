package main

// The three ways people use cloak: a shell function replacing `claude`
// (cloak shell-init, examples/shell-alias.sh, examples/devcontainer.json),
// a nested `cloak run` inside a session, and a CI step
// (examples/github-actions.yml), each run as written.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// trickyArgs must reach claude exactly, one argument each.
var trickyArgs = []string{"-p", "two words", "it's", `"quoted"`, "$HOME", "", "*", `back\slash`, "new\nline", "--", "-x"}

// fakeClaudeBin makes a directory for PATH holding cloak and a fake claude
// that prints each argument in brackets, then its ANTHROPIC_API_KEY.
func fakeClaudeBin(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]\\n' \"$a\"; done\nprintf 'key=%s\\n' \"$ANTHROPIC_API_KEY\"\n"
	if err := os.WriteFile(filepath.Join(dir, "claude"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(cloakBin, filepath.Join(dir, "cloak")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// shellSession is a session whose secrets sit where cloak looks by default,
// since the shell function passes no flags.
func shellSession(t *testing.T) (*session, string) {
	t.Helper()
	s, real := anthropicSession(t, nil)
	cfg := filepath.Join(s.home, "config", "cloak", "secrets.env")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(s.envFile, cfg); err != nil {
		t.Fatal(err)
	}
	s.envFile = cfg
	return s, real
}

// checkFakeClaude checks the fake claude's output: cloak's --settings
// first, then exactly want, then a dummy key.
func checkFakeClaude(t *testing.T, out, real string, want []string) {
	t.Helper()
	if strings.Contains(out, real) {
		t.Fatal("claude got the real key")
	}
	rest, ok := strings.CutPrefix(out, "[--settings]\n[{")
	if !ok {
		t.Fatalf("claude did not get cloak's --settings first:\n%s", out)
	}
	_, rest, _ = strings.Cut(rest, "}]\n")
	var b strings.Builder
	for _, a := range want {
		fmt.Fprintf(&b, "[%s]\n", a)
	}
	args, key, _ := strings.Cut(rest, "key=")
	if args != b.String() {
		t.Errorf("claude's arguments:\n%s\nwant:\n%s", args, b.String())
	}
	if !strings.HasPrefix(key, "sk-ant-api03-") || len(strings.TrimSpace(key)) != len(real) {
		t.Errorf("claude's ANTHROPIC_API_KEY is not a dummy of the real key's shape: %q", key)
	}
}

func TestShellInitRunsClaudeUnderCloak(t *testing.T) {
	need(t, "bash", "zsh", "fish")
	cases := []struct {
		name string
		argv []string // the shell, its script, then trickyArgs follow
	}{
		{"bash", []string{"bash", "-c", `eval "$(cloak shell-init bash)"; claude "$@"`, "bash"}},
		{"zsh", []string{"zsh", "-c", `eval "$(cloak shell-init zsh)"; claude "$@"`, "zsh"}},
		{"fish", []string{"fish", "-c", `cloak shell-init fish | source; claude $argv`, "--"}},
		{"bash, examples/shell-alias.sh", []string{"bash", "-c", `. "$EXAMPLES/shell-alias.sh"; claude "$@"`, "bash"}},
		{"zsh, examples/shell-alias.sh", []string{"zsh", "-c", `. "$EXAMPLES/shell-alias.sh"; claude "$@"`, "zsh"}},
		// An alias named claude (a local install of Claude Code may add one)
		// would beat the function; shell-init removes it.
		{"bash with an alias", []string{"bash", "-O", "expand_aliases", "-c", "alias claude='echo bypassed'\n" + `eval "$(cloak shell-init bash)"` + "\n" + `claude "$@"`, "bash"}},
	}
	examples, _ := filepath.Abs("examples")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, real := shellSession(t)
			bin := fakeClaudeBin(t)
			cmd := exec.Command(tc.argv[0], append(tc.argv[1:], trickyArgs...)...)
			cmd.Env = append(s.env(), "PATH="+bin+":"+os.Getenv("PATH"), "EXAMPLES="+examples)
			cmd.Dir = s.home
			out, err := cmd.Output()
			s.assertNoLeak(string(out))
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			checkFakeClaude(t, string(out), real, trickyArgs)
			if !strings.Contains(string(out), "key=sk-ant-api03-") {
				t.Fatalf("claude did not run under cloak:\n%s", out)
			}
		})
	}
}

// `command claude` stays the way to run claude without cloak, and the
// function is not what `command` finds.
func TestShellInitLeavesCommandClaudeAlone(t *testing.T) {
	need(t, "bash")
	s, _ := shellSession(t)
	bin := fakeClaudeBin(t)
	cmd := exec.Command("bash", "-c", `eval "$(cloak shell-init bash)"; type -t claude; command claude plain`)
	cmd.Env = append(s.env(), "PATH="+bin+":"+os.Getenv("PATH"), "ANTHROPIC_API_KEY=from-the-shell")
	out, err := cmd.Output()
	if err != nil || string(out) != "function\n[plain]\nkey=from-the-shell\n" {
		t.Fatalf("%v\n%s", err, out)
	}
}

// A completion registered for claude keeps working for the function.
func TestShellInitKeepsCompletion(t *testing.T) {
	need(t, "bash", "fish")
	bin := fakeClaudeBin(t)
	env := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	cases := []struct {
		name, shell, script, want string
	}{
		{"bash", "bash", `complete -W "alpha beta" claude; eval "$(cloak shell-init bash)"; complete -p claude`, "complete -W 'alpha beta' claude\n"},
		{"fish", "fish", `complete -c claude -f -a "alpha beta"; cloak shell-init fish | source; complete -C "claude al"`, "alpha\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(tc.shell, "-c", tc.script)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil || string(out) != tc.want {
				t.Fatalf("%v: got %q, want %q", err, out, tc.want)
			}
		})
	}
}

func TestShellInitUnknownShell(t *testing.T) {
	out, err := exec.Command(cloakBin, "shell-init", "tcsh").CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), `unknown shell "tcsh"`) {
		t.Fatalf("exit %d: %s", code, out)
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// A cloak run inside a session runs the command directly under that
// session: same proxy, same dummies, the outer audit log, and one line
// saying so.
func TestNestedRunUsesTheOuterSession(t *testing.T) {
	need(t, "curl")
	u := newUpstream(t, nil)
	s, real := anthropicSession(t, u)
	inner := cloakBin + ` run -- sh -c 'echo "inner session=$CLOAK_SESSION key=$ANTHROPIC_API_KEY"; curl -sS -f -H "x-api-key: $ANTHROPIC_API_KEY" https://api.anthropic.com/v1/messages'`
	r := s.run(nil, "sh", "-c", `echo "outer session=$CLOAK_SESSION key=$ANTHROPIC_API_KEY"; `+inner)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(r.stdout, "\n")
	outer := strings.TrimPrefix(lines[0], "outer ")
	if len(lines) < 3 || !strings.HasPrefix(lines[1], "inner ") || strings.TrimPrefix(lines[1], "inner ") != outer {
		t.Fatalf("the inner command did not run in the outer session with its dummy:\n%s", r.stdout)
	}
	id := strings.TrimPrefix(strings.Fields(outer)[0], "session=")
	if want := "cloak: info: already inside cloak session " + id + "; running sh directly\n"; r.stderr != want {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
	if reqs := u.requests(); len(reqs) != 1 || reqs[0].Header.Get("X-Api-Key") != real {
		t.Fatal("the inner command's request did not get the real key through the outer proxy")
	}
	if !s.auditHas(`"session":"`+id+`"`, `"injected":["ANTHROPIC_API_KEY"]`) {
		t.Error("the inner request is not in the outer session's audit log")
	}
}

// The markers of a session can be copied into a shell outside cloak. If
// that shell holds a real value cloak would protect, cloak must not run the
// command directly with it.
func TestForgedSessionMarkersDoNotSwitchProtectionOff(t *testing.T) {
	s, real := anthropicSession(t, nil)
	s.extraEnv = []string{"CLOAK=1", "CLOAK_SESSION=0123456789ab", "https_proxy=http://cloak:x@127.0.0.1:9", "ANTHROPIC_API_KEY=" + real}
	r := s.run([]string{"--from-env", "ANTHROPIC_API_KEY"}, "sh", "-c", "echo child ran")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "ANTHROPIC_API_KEY in it is not cloak's dummy") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

// workflowCommand extracts the cloak command line a workflow step runs.
func workflowCommand(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "cloak run ") || strings.HasPrefix(l, "exec cloak run ") {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: want one `cloak run` line, found %d", path, len(found))
	}
	return found[0]
}

// The CI example's command, run as written by bash (as GitHub Actions
// does), with the real claude and the key in the environment: claude gets
// a dummy, the API the real key, the audit log lands where the job uploads
// it from, and claude's exit status is cloak's.
func TestGitHubActionsExampleRuns(t *testing.T) {
	claude := claudeBin(t)
	line := workflowCommand(t, filepath.Join("examples", "github-actions.yml"))
	for _, tc := range []struct {
		name   string
		fail   bool
		status int
	}{{"success", false, 0}, {"API error", true, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeAnthropic{fail: tc.fail}
			u := newUpstream(t, fake.serve)
			real := randomReal("sk-ant-api03-", 95)
			s := newSession(t, u, nil)
			s.timeout = 3 * time.Minute
			bin := t.TempDir()
			for name, target := range map[string]string{"cloak": cloakBin, "claude": claude} {
				if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
					t.Fatal(err)
				}
			}
			// The test's wiring (upstream CA, --resolve) goes right after
			// `cloak run`; the rest of the line is the workflow's.
			wiring := append([]string{"--upstream-ca", u.ca.pemPath}, u.resolveFlags("api.anthropic.com")...)
			script := strings.Replace(line, "cloak run ", "cloak run "+strings.Join(wiring, " ")+" ", 1)
			audit := filepath.Join(s.home, "runner-temp", "cloak-audit.log")
			cmd := exec.Command("bash", "-e", "-c", script)
			cmd.Dir = s.workDir()
			cmd.Env = append(s.env(), append(claudeEnv,
				"PATH="+bin+":"+os.Getenv("PATH"),
				"ANTHROPIC_API_KEY="+real,
				"CLOAK_AUDIT_LOG="+audit,
				"PROMPT=Summarise the open TODO comments in this repository",
			)...)
			s.reals = append(s.reals, real)
			out, err := cmd.CombinedOutput()
			s.assertNoLeak(string(out))
			if code := exitCode(err); code != tc.status {
				t.Fatalf("exit %d, want %d\n%s", code, tc.status, out)
			}
			if strings.Contains(string(out), "cloak: warning") {
				t.Errorf("cloak warned:\n%s", out)
			}
			result, err := os.ReadFile(filepath.Join(s.workDir(), "claude-result.json"))
			if err != nil {
				t.Fatal(err)
			}
			var got claudeResult
			if err := json.Unmarshal(result, &got); err != nil || got.IsError != tc.fail {
				t.Fatalf("claude-result.json: %v\n%s", err, result)
			}
			if !tc.fail && got.Result != fakeAnswer {
				t.Fatalf("claude's answer %q", got.Result)
			}
			for _, q := range u.requests() {
				if q.Header.Get("X-Api-Key") != real {
					t.Errorf("%s %s did not carry the real key", q.Method, q.URI)
				}
			}
			log, err := os.ReadFile(audit)
			if err != nil || !strings.Contains(string(log), `"injected":["ANTHROPIC_API_KEY"]`) {
				t.Fatalf("the audit log is not where the job uploads it from: %v", err)
			}
		})
	}
}

// The devcontainer example mounts the user's cloak config dir where cloak
// looks for it inside the container, and its alias step makes `claude` in
// a new bash run under cloak.
func TestDevcontainerExample(t *testing.T) {
	need(t, "bash")
	b, err := os.ReadFile(filepath.Join("examples", "devcontainer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dc struct {
		RemoteUser        string            `json:"remoteUser"`
		Mounts            []string          `json:"mounts"`
		PostCreateCommand map[string]string `json:"postCreateCommand"`
	}
	if err := json.Unmarshal(b, &dc); err != nil {
		t.Fatalf("examples/devcontainer.json: %v", err)
	}
	want := "target=/home/" + dc.RemoteUser + "/.config/cloak,"
	if len(dc.Mounts) != 1 || !strings.Contains(dc.Mounts[0], want) || !strings.Contains(dc.Mounts[0], "readonly") {
		t.Errorf("mounts %q: want the config dir read-only at %s", dc.Mounts, want)
	}
	step := dc.PostCreateCommand["alias"]
	if step == "" {
		t.Fatal("no alias step in postCreateCommand")
	}
	s, real := shellSession(t)
	bin := fakeClaudeBin(t)
	env := append(s.env(), "PATH="+bin+":"+os.Getenv("PATH"))
	setup := exec.Command("bash", "-c", step)
	setup.Env = env
	if out, err := setup.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	use := exec.Command("bash", "-c", `. ~/.bashrc; claude "$@"`, "bash", "-p", "hello there")
	use.Env, use.Dir = env, s.home
	out, err := use.Output()
	s.assertNoLeak(string(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	checkFakeClaude(t, string(out), real, []string{"-p", "hello there"})
}

// A shell that got the key as a variable keeps it in its initial
// environment, readable by the agent from /proc; cloak says so, and exec
// (as the CI example does) makes it go away.
func TestKeyLeftInTheParentShellIsWarnedAbout(t *testing.T) {
	need(t, "bash")
	s, real := anthropicSession(t, nil)
	s.extraEnv = []string{"ANTHROPIC_API_KEY=" + real}
	for _, tc := range []struct {
		script string
		warned bool
	}{
		{`"$CLOAK_BIN" run --from-env ANTHROPIC_API_KEY -- true; echo done`, true},
		{`exec "$CLOAK_BIN" run --from-env ANTHROPIC_API_KEY -- true`, false},
	} {
		cmd := exec.Command("bash", "-c", tc.script)
		cmd.Env = append(s.env(), "CLOAK_BIN="+cloakBin)
		out, err := cmd.CombinedOutput()
		s.assertNoLeak(string(out))
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.script, err, out)
		}
		warned := strings.Contains(string(out), "still holds ANTHROPIC_API_KEY in its environment, where the agent can read it")
		if warned != tc.warned {
			t.Errorf("%s: warned %v, want %v\n%s", tc.script, warned, tc.warned, out)
		}
	}
}

// claude started by a nested cloak run still gets cloak's --settings, with
// the outer session's proxy and dummy: a settings file must not win there
// either.
func TestNestedClaudeGetsTheOuterSessionsSettings(t *testing.T) {
	s, real := anthropicSession(t, nil)
	bin := fakeClaudeBin(t)
	s.extraEnv = []string{"PATH=" + bin + ":" + os.Getenv("PATH")}
	r := s.run(nil, "sh", "-c", `echo "proxy=$https_proxy"; cloak run -- claude "two words" ""`)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	first, rest, _ := strings.Cut(r.stdout, "\n")
	proxy := strings.TrimPrefix(first, "proxy=")
	checkFakeClaude(t, rest, real, []string{"two words", ""})
	_, js, _ := strings.Cut(rest, "\n[")
	js, _, _ = strings.Cut(js, "]\n")
	var doc struct{ Env map[string]string }
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatalf("--settings: %v", err)
	}
	if doc.Env["https_proxy"] != proxy || !strings.HasPrefix(doc.Env["ANTHROPIC_API_KEY"], "sk-ant-api03-") || doc.Env["ANTHROPIC_API_KEY"] == real {
		t.Errorf("claude's --settings do not carry the outer session's proxy and dummy: %v", doc.Env)
	}
	if !strings.Contains(r.stderr, "cloak: info: already inside cloak session ") {
		t.Errorf("stderr: %q", r.stderr)
	}
}
