package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// doctorRun runs `cloak doctor` in dir with a fake claude on PATH.
func doctorRun(t *testing.T, s *session, dir string, extraEnv ...string) (string, int) {
	t.Helper()
	bin := t.TempDir()
	script := "#!/bin/sh\necho '2.1.332 (Claude Code)'\n"
	if err := os.WriteFile(filepath.Join(bin, "claude"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cloakBin, "doctor")
	cmd.Dir = dir
	cmd.Env = append(append(s.env(), "PATH="+bin+":"+os.Getenv("PATH")), extraEnv...)
	out, err := cmd.CombinedOutput()
	s.assertNoLeak(string(out))
	return string(out), exitCode(err)
}

// row matches one row of the trust table.
func row(client, bound, passed string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(client) + `\s+` + bound + `\s+` + passed + `$`)
}

func TestDoctorFindsTheProblemsTheTestsFound(t *testing.T) {
	need(t, "curl", "node", "git", "python3")
	s, _ := anthropicSession(t, nil)
	project := filepath.Join(s.home, "project")
	for _, d := range []string{filepath.Join(project, ".git"), filepath.Join(project, ".claude")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The secrets file in the project, where the agent works.
	secrets, _ := os.ReadFile(s.envFile)
	dotenv := filepath.Join(project, ".env")
	if err := os.WriteFile(dotenv, secrets, 0o600); err != nil {
		t.Fatal(err)
	}
	s.planted = append(s.planted, dotenv)
	settings := filepath.Join(project, ".claude", "settings.json")
	if err := os.WriteFile(settings, []byte(`{"env":{"HTTPS_PROXY":"http://proxy.elsewhere.test:3128"}}`), 0o644); err != nil {
		t.Fatal(err)
	}

	out, code := doctorRun(t, s, project)
	tilde := func(p string) string { return "~" + strings.TrimPrefix(p, s.home) }
	if code != 1 {
		t.Errorf("exit %d, want 1 (problems found)", code)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^  ok +\S+/claude: 2\.1\.332 \(Claude Code\)$`),
		regexp.MustCompile(`(?m)^  problem +` + regexp.QuoteMeta(tilde(dotenv)) + ` is inside the working tree ` + regexp.QuoteMeta(tilde(project)) + `: the agent works there and can read this file`),
		regexp.MustCompile(`mv ` + regexp.QuoteMeta(dotenv) + ` ~/config/cloak/secrets.env`),
		regexp.MustCompile(`(?m)^  info +ANTHROPIC_API_KEY goes only to api\.anthropic\.com$`),
		regexp.MustCompile(`(?m)^  warning +` + regexp.QuoteMeta(settings) + ` sets env\.HTTPS_PROXY: cloak passes its own value instead`),
		row("curl", "ok", "ok"),
		row("node (https via CONNECT)", "ok", "ok"),
		row("python3 (urllib)", "ok", "ok"),
		row("git", "ok", "ok"),
		regexp.MustCompile(`(?m)^1 problem\(s\) found$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("doctor's report lacks %s:\n%s", want, out)
		}
	}
}

func TestDoctorIsHappyWithTheRecommendedSetup(t *testing.T) {
	need(t, "curl", "node", "git", "python3")
	s, _ := shellSession(t)
	project := filepath.Join(s.home, "project")
	if err := os.MkdirAll(project, 0o755); err != nil {
		t.Fatal(err)
	}
	out, code := doctorRun(t, s, project)
	if code != 0 || !strings.Contains(out, "\nno problems found\n") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if !strings.Contains(out, "~/config/cloak/secrets.env: ANTHROPIC_API_KEY") {
		t.Errorf("doctor does not say where the secrets come from:\n%s", out)
	}
}

// A client whose own configuration overrides the trust variables cloak
// sets (here a ~/.curlrc naming another CA file) shows up in the table.
func TestDoctorTrustTableShowsAFailingClient(t *testing.T) {
	need(t, "curl")
	s, _ := shellSession(t)
	if err := os.WriteFile(filepath.Join(s.home, ".curlrc"), []byte("cacert = /dev/null\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := doctorRun(t, s, s.home)
	if code != 1 || !row("curl", "FAILS", "FAILS").MatchString(out) {
		t.Fatalf("exit %d; want curl to fail both ways:\n%s", code, out)
	}
}

// A real key exported in the shell is not protected unless cloak loads it.
func TestDoctorWarnsAboutAKeyInTheShell(t *testing.T) {
	s, real := shellSession(t)
	out, code := doctorRun(t, s, s.home, "OPENAI_API_KEY="+strings.Replace(real, "sk-ant-api03-", "sk-proj-", 1))
	if code != 1 || !strings.Contains(out, "OPENAI_API_KEY is set in this shell but cloak does not load it") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}
