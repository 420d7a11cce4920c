package launcher

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// policyOptions sets up a secrets file, the user's policy in cloak's
// config dir and a project file, as `cloak policy` would find them.
func policyOptions(t *testing.T, out *bytes.Buffer) Options {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("HOME", dir)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := write("secrets.env", "ANTHROPIC_API_KEY="+realOf("ANTHROPIC_API_KEY")+"\nMY_TOKEN="+realOf("MY_TOKEN")+"\nGITHUB_TOKEN="+realOf("GITHUB_TOKEN")+"\n")
	if err := os.MkdirAll(filepath.Join(dir, "config", "cloak"), 0o700); err != nil {
		t.Fatal(err)
	}
	write("config/cloak/policy.toml", "[egress]\ndefault = \"deny\"\nallow = [\"*.example.com\"]\n\n[secrets.MY_TOKEN]\nhosts = [\"api.example.com\"]\nplaces = [\"header:authorization\"]\n\n[secrets.OPENAI_API_KEY]\npreset = \"openai\"\n")
	write(projectPolicy, "[egress]\ndeny = [\"ads.example.com\"]\n\n[secrets.GITHUB_TOKEN]\nhosts = [\"api.github.com\"]\n")
	return Options{EnvFiles: []string{env}, ProjectDir: dir, Environ: []string{}, Stdout: out, Stderr: out}
}

func TestShowPolicy(t *testing.T) {
	var out bytes.Buffer
	o := policyOptions(t, &out)
	user := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "cloak", "policy.toml")
	if err := ShowPolicy(o); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	project := filepath.Join(o.ProjectDir, projectPolicy)
	for _, want := range []string{
		`(?m)^  ` + regexp.QuoteMeta(user) + ` +the user's: sets the policy$`,
		`(?m)^  ` + regexp.QuoteMeta(project) + ` +the project's: may only narrow it$`,
		`(?m)^  default +deny +` + regexp.QuoteMeta(user) + ` line 2$`,
		`(?m)^  inspect +bound +built in$`,
		`(?m)^  deny +ads\.example\.com +` + regexp.QuoteMeta(project) + ` line 2$`,
		`(?m)^  ANTHROPIC_API_KEY \(loaded from .*secrets\.env line 1\)$`,
		`(?m)^    rule 1 +hosts +api\.anthropic\.com +preset anthropic, built in for ANTHROPIC_API_KEY$`,
		`(?m)^ +paths +/v1/messages\*, /v1/models\*, /api/\* +preset anthropic`,
		`(?m)^    rule 1 +hosts +api\.github\.com +preset github, built in for GITHUB_TOKEN; narrowed by ` + regexp.QuoteMeta(project) + ` line 5$`,
		`(?m)^ +places +header:authorization +` + regexp.QuoteMeta(user) + ` line 7$`,
		`(?m)^  OPENAI_API_KEY \(` + regexp.QuoteMeta(user) + ` line 9\)$`,
	} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("policy show lacks %s:\n%s", want, got)
		}
	}
	for _, n := range []string{"ANTHROPIC_API_KEY", "MY_TOKEN", "GITHUB_TOKEN"} {
		if strings.Contains(got, realOf(n)) {
			t.Fatal("policy show prints a real value")
		}
	}
}

func TestExplainPolicy(t *testing.T) {
	for _, tc := range []struct {
		method, url string
		want        []string
	}{
		{"POST", "https://api.anthropic.com/v1/messages?beta=true", []string{
			"POST https://api.anthropic.com/v1/messages?beta=true\n",
			"decrypted and checked: a binding of ANTHROPIC_API_KEY names this host",
			"ANTHROPIC_API_KEY  injected in: header:x-api-key, header:authorization\n",
			"MY_TOKEN           not injected here: its rules allow only api.example.com in header:authorization\n",
			"in the body: sent as it is",
		}},
		{"GET", "https://api.anthropic.com/admin", []string{
			"ANTHROPIC_API_KEY  not injected here: its rules allow only api.anthropic.com GET,HEAD,POST /v1/messages*,/v1/models*,/api/* in header:x-api-key,header:authorization",
		}},
		{"get", "https://api.example.com/v1/x", []string{"GET https://api.example.com/v1/x", "MY_TOKEN           injected in: header:authorization"}},
		{"GET", "https://ads.example.com/", []string{"refused (denied-host): ads.example.com:443 matches egress deny ads.example.com\nto allow it, change [egress] in "}},
		{"GET", "https://other.test/", []string{"refused (denied-host): other.test:443 is not on the egress allow list (egress default is deny)"}},
		{"GET", "https://www.example.com/", []string{"passed through untouched: no binding for this host"}},
		{"GET", "http://www.example.com/", []string{"plain HTTP: forwarded, never given a real value; a dummy in the headers or URL: refused (tripwire); in the body: refused (tripwire)"}},
	} {
		var out bytes.Buffer
		if err := ExplainPolicy(policyOptions(t, &out), tc.method, tc.url); err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.url, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s %s: output lacks %q:\n%s", tc.method, tc.url, w, out.String())
			}
		}
	}
	var out bytes.Buffer
	if err := ExplainPolicy(policyOptions(t, &out), "GET", "ftp://x.example.com/"); err == nil || !strings.Contains(err.Error(), "want an http:// or https:// URL") {
		t.Errorf("ftp URL: %v", err)
	}
}

func TestPolicyCommandsRefuseBadPolicy(t *testing.T) {
	var out bytes.Buffer
	o := policyOptions(t, &out)
	if err := os.WriteFile(filepath.Join(o.ProjectDir, projectPolicy), []byte("[secrets.MY_TOKEN]\nhosts = [\"evil.example\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := ShowPolicy(o)
	if err == nil || !strings.Contains(err.Error(), projectPolicy+" line 2: host \"evil.example\" for MY_TOKEN would widen") {
		t.Fatalf("policy show with a widening project file: %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("printed before failing:\n%s", out.String())
	}
}
