package launcher

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cloak-dev/cloak/proxy"
)

// realOf is the fixture value of a loaded secret; tests grep for it.
func realOf(name string) string { return "real-value-of-" + name + "-0123456789" }

func loadedSecrets(names ...string) []secret {
	var out []secret
	for _, n := range names {
		out = append(out, secret{name: n, real: realOf(n), source: "test.env line 1"})
	}
	return out
}

// policyCase writes the user's and the project's files (when not empty)
// and loads the policy for the named secrets.
type policyCase struct {
	user     string // the user's file
	explicit bool   // the user's file came from --policy
	project  string // .cloak.toml
	binds    []string
	inspect  bool
	names    []string
}

func (c policyCase) load(t *testing.T) (*policy, string, error) {
	t.Helper()
	dir := t.TempDir()
	src := policySources{binds: c.binds, inspectAll: c.inspect, userExplicit: c.explicit}
	if c.user != "" {
		src.userFile = filepath.Join(dir, "policy.toml")
		if err := os.WriteFile(src.userFile, []byte(c.user), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	src.project = filepath.Join(dir, projectPolicy)
	if c.project != "" {
		if err := os.WriteFile(src.project, []byte(c.project), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pol, err := loadPolicy(src, loadedSecrets(c.names...))
	if err != nil {
		for _, n := range c.names {
			if strings.Contains(err.Error(), realOf(n)) {
				t.Fatalf("error holds a real value: %v", err)
			}
		}
	}
	return pol, dir, err
}

func hosts(t *testing.T, list ...string) []proxy.HostPattern {
	t.Helper()
	hs, err := parseHosts(list)
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

func TestNoPolicyFileBindsWellKnownNames(t *testing.T) {
	pol, _, err := policyCase{names: []string{"ANTHROPIC_API_KEY", "GITHUB_TOKEN", "OPENAI_API_KEY", "HF_TOKEN", "MY_TOKEN"}}.load(t)
	if err != nil {
		t.Fatal(err)
	}
	rules := pol.rules()
	want := map[string][]proxy.Rule{
		"ANTHROPIC_API_KEY": {{
			Hosts:   hosts(t, "api.anthropic.com"),
			Methods: []string{"GET", "HEAD", "POST"},
			Paths:   []string{"/v1/messages*", "/v1/models*", "/api/*"},
			Places:  []string{"header:x-api-key", "header:authorization"},
		}},
		"GITHUB_TOKEN":   {{Hosts: hosts(t, "api.github.com", "uploads.github.com", "github.com"), Places: []string{"header:authorization", "basic-auth"}}},
		"OPENAI_API_KEY": {{Hosts: hosts(t, "api.openai.com"), Paths: []string{"/v1/*"}, Places: []string{"header:authorization"}}},
		"HF_TOKEN":       {{Hosts: hosts(t, "huggingface.co"), Places: []string{"header:authorization"}}},
	}
	if !reflect.DeepEqual(rules, want) {
		t.Fatalf("rules = %+v\nwant %+v", rules, want)
	}
	e := pol.proxyEgress()
	if e.DenyByDefault || len(e.Allow) != 0 || len(e.Deny) != 0 || pol.egress.inspectAll {
		t.Fatalf("default egress = %+v", e)
	}
}

const userPolicy = `# the user's policy
[egress]
default = "deny"
allow = ["*.example.com", "registry.example.org:8443"]
deny = ["bad.example.com"]
inspect = "all"

[secrets.ANTHROPIC_API_KEY]
preset = "anthropic"
methods = ["post"]

[secrets.MY_TOKEN]
hosts = ["api.example.com"]
places = ["Header:X-Token"]

[[secrets.MY_TOKEN.rule]]
hosts = ["upload.example.com"]
methods = ["PUT"]
paths = ["/files/*"]

[secrets.NPM_TOKEN]
preset = "npm"
hosts = ["npm.example.com"]
`

func TestUserPolicyFile(t *testing.T) {
	pol, dir, err := policyCase{user: userPolicy, explicit: true, names: []string{"ANTHROPIC_API_KEY", "MY_TOKEN", "NPM_TOKEN"}}.load(t)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]proxy.Rule{
		"ANTHROPIC_API_KEY": {{
			Hosts:   hosts(t, "api.anthropic.com"),
			Methods: []string{"POST"},
			Paths:   []string{"/v1/messages*", "/v1/models*", "/api/*"},
			Places:  []string{"header:x-api-key", "header:authorization"},
		}},
		"MY_TOKEN": {
			{Hosts: hosts(t, "api.example.com"), Places: []string{"header:x-token"}},
			{Hosts: hosts(t, "upload.example.com"), Methods: []string{"PUT"}, Paths: []string{"/files/*"}},
		},
		"NPM_TOKEN": {{Hosts: hosts(t, "npm.example.com"), Places: []string{"header:authorization"}}},
	}
	if got := pol.rules(); !reflect.DeepEqual(got, want) {
		t.Fatalf("rules = %+v\nwant %+v", got, want)
	}
	e := pol.proxyEgress()
	if !e.DenyByDefault || len(e.Allow) != 2 || len(e.Deny) != 1 || !pol.egress.inspectAll {
		t.Fatalf("egress = %+v", e)
	}
	if e.Allow[1].Port != 8443 || e.Allow[0].Port != 0 {
		t.Errorf("egress ports = %+v", e.Allow)
	}
	file := filepath.Join(dir, "policy.toml")
	a := pol.bindings["ANTHROPIC_API_KEY"].rules[0]
	if a.from[fMethods] != file+" line 10" || a.from[fHosts] != "preset anthropic, "+file+" line 9" {
		t.Errorf("origins = %q", a.from)
	}
	if pol.egress.defaultFrom != file+" line 3" || pol.egress.deny[0].from != file+" line 5" {
		t.Errorf("egress origins: %q %q", pol.egress.defaultFrom, pol.egress.deny[0].from)
	}
	if !strings.Contains(e.Hint, file) {
		t.Errorf("hint %q does not name the file", e.Hint)
	}
}

func TestBadPolicyInput(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       string // in the error, after "FILE "
	}{
		{"syntax", "[egress]\ndefault = allow\n", "line 2: "},
		{"unknown table", "[egres]\ndefault = \"deny\"\n", `line 1: unknown key "egres"`},
		{"unknown egress key", "[egress]\n\ndefualt = \"deny\"\n", `line 3: unknown key "defualt" in [egress]`},
		{"unknown secret key", "[secrets.A_KEY]\nhosts = [\"a.example.com\"]\nhots = [\"b.example.com\"]\n", `line 3: unknown key "hots" in [secrets.A_KEY]`},
		{"keys are case-sensitive", "[secrets.A_KEY]\nHosts = [\"a.example.com\"]\n", `line 2: unknown key "Hosts"`},
		{"unknown rule key", "[[secrets.A_KEY.rule]]\nhosts = [\"a.example.com\"]\n[[secrets.A_KEY.rule]]\nhosts = [\"b.example.com\"]\npath = [\"/x\"]\n", `line 5: unknown key "path" in [secrets.A_KEY.rule]`},
		{"wrong type", "[secrets.A_KEY]\nhosts = \"a.example.com\"\n", `line 2: secrets.A_KEY.hosts: `},
		{"bad host", "[secrets.A_KEY]\nhosts = [\"a.*.example.com\"]\n", `line 2: hosts: bad host`},
		{"bad host chars", "[secrets.A_KEY]\n# comment\nhosts = [\"a.example.com/x\"]\n", `line 3: hosts: bad host`},
		{"bad path", "[secrets.A_KEY]\nhosts = [\"a.example.com\"]\npaths = [\"v1/*\"]\n", `line 3: paths: "v1/*": a path pattern starts with /`},
		{"inner star", "[secrets.A_KEY]\nhosts = [\"a.example.com\"]\npaths = [\"/v1/*/x\"]\n", `line 3: paths: "/v1/*/x": only a final *`},
		{"bad place", "[secrets.A_KEY]\nhosts = [\"a.example.com\"]\nplaces = [\"cookie\"]\n", `line 3: places: unknown place "cookie"`},
		{"bad method", "[secrets.A_KEY]\nhosts = [\"a.example.com\"]\nmethods = [\"GE T\"]\n", `line 3: methods: "GE T" is not an HTTP method`},
		{"not loaded", "[secrets.A_KEY]\nhosts = [\"a.example.com\"]\n\n[secrets.OTHER_KEY]\nhosts = [\"a.example.com\"]\n", `line 4: no secret named OTHER_KEY was loaded`},
		{"empty hosts", "[secrets.A_KEY]\nhosts = []\n", `line 2: secrets.A_KEY.hosts is empty`},
		{"empty paths", "[secrets.A_KEY]\nhosts = [\"a.example.com\"]\npaths = []\n", `line 3: secrets.A_KEY.paths is empty (leave the key out to allow any)`},
		{"rule without hosts", "[secrets.A_KEY]\nhosts = [\"a.example.com\"]\n[[secrets.A_KEY.rule]]\nmethods = [\"GET\"]\n", `line 3: [[secrets.A_KEY.rule]] has no hosts`},
		{"rule empty hosts", "[[secrets.A_KEY.rule]]\nhosts = [\"a.example.com\"]\n[[secrets.A_KEY.rule]]\nhosts = []\n", `line 4: hosts is empty`},
		{"fields without hosts", "[secrets.A_KEY]\nmethods = [\"GET\"]\n", `line 1: secrets.A_KEY has no hosts`},
		{"empty secret table", "[secrets.A_KEY]\n", `line 1: [secrets.A_KEY] says nowhere the secret may go`},
		{"unknown preset", "[secrets.A_KEY]\npreset = \"anthropik\"\n", `line 2: unknown preset "anthropik" (known: anthropic, github, huggingface, npm, openai)`},
		{"npm without host", "[secrets.A_KEY]\npreset = \"npm\"\n", `line 2: preset npm names no host`},
		{"bad default", "[egress]\ndefault = \"maybe\"\n", `line 2: egress.default: "maybe": want "allow" or "deny"`},
		{"bad inspect", "[egress]\ninspect = \"some\"\n", `line 2: egress.inspect: "some": want "bound" or "all"`},
		{"bad egress pattern", "[egress]\nallow = [\n  \"ok.example.com\",\n  \"*\",\n]\ndeny = [\"x..example.com\"]\n", `line 2: egress.allow: bad host`},
		{"empty egress list", "[egress]\ndeny = []\n", `line 2: egress.deny is empty`},
		{"bad secret name", "[secrets.\"A KEY\"]\nhosts = [\"a.example.com\"]\n", `line 1: secret name "A KEY" is not an environment variable name`},
		{"inline table", "[secrets]\nA_KEY = { hosts = [\"a.example.com\"], port = 1 }\n", `line 2: unknown key "port"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, dir, err := policyCase{user: tc.file, explicit: true, names: []string{"A_KEY"}}.load(t)
			if err == nil {
				t.Fatal("no error")
			}
			want := filepath.Join(dir, "policy.toml") + " " + tc.want
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q\nwant it to contain %q", err, want)
			}
		})
	}
}

func TestConfigDirPolicySkipsSecretsNotLoaded(t *testing.T) {
	file := "[secrets.OPENAI_API_KEY]\npreset = \"openai\"\n\n[secrets.A_KEY]\nhosts = [\"a.example.com\"]\n"
	pol, _, err := policyCase{user: file, names: []string{"A_KEY"}}.load(t)
	if err != nil {
		t.Fatal(err)
	}
	if len(pol.skipped) != 1 || !strings.HasPrefix(pol.skipped[0], "OPENAI_API_KEY (") || !strings.HasSuffix(pol.skipped[0], "policy.toml line 1)") {
		t.Fatalf("skipped = %q", pol.skipped)
	}
	if len(pol.rules()["A_KEY"]) != 1 {
		t.Fatal("A_KEY not bound")
	}
	// Named with --policy, the same file is an error.
	if _, _, err := (policyCase{user: file, explicit: true, names: []string{"A_KEY"}}).load(t); err == nil {
		t.Fatal("--policy file naming a secret not loaded was accepted")
	}
}

func TestMissingPolicyFiles(t *testing.T) {
	src := policySources{userFile: filepath.Join(t.TempDir(), "none.toml"), project: filepath.Join(t.TempDir(), projectPolicy)}
	if _, err := loadPolicy(src, nil); err != nil {
		t.Fatalf("missing config-dir file and project file: %v", err)
	}
	src.userExplicit = true
	if _, err := loadPolicy(src, nil); err == nil || !strings.Contains(err.Error(), "none.toml") {
		t.Fatalf("missing --policy file: %v", err)
	}
}

// TestPrecedence: presets, then the user's file, then flags, then the
// project's file.
func TestPrecedence(t *testing.T) {
	user := "[egress]\ninspect = \"bound\"\n[secrets.ANTHROPIC_API_KEY]\nhosts = [\"gateway.example.com\"]\n[secrets.GITHUB_TOKEN]\nhosts = [\"ghe.example.com\"]\n"
	project := "[secrets.GITHUB_TOKEN]\nhosts = [\"a.example.com\"]\n"
	pol, _, err := policyCase{
		user: user, project: project, inspect: true,
		binds: []string{"GITHUB_TOKEN=*.example.com", "GITHUB_TOKEN=b.example.com"},
		names: []string{"ANTHROPIC_API_KEY", "GITHUB_TOKEN"},
	}.load(t)
	if err != nil {
		t.Fatal(err)
	}
	got := pol.rules()
	// The file replaced the preset entirely.
	if !reflect.DeepEqual(got["ANTHROPIC_API_KEY"], []proxy.Rule{{Hosts: hosts(t, "gateway.example.com")}}) {
		t.Errorf("ANTHROPIC_API_KEY = %+v", got["ANTHROPIC_API_KEY"])
	}
	// --bind replaced the file's; the project narrowed --bind's.
	if !reflect.DeepEqual(got["GITHUB_TOKEN"], []proxy.Rule{{Hosts: hosts(t, "a.example.com")}}) {
		t.Errorf("GITHUB_TOKEN = %+v", got["GITHUB_TOKEN"])
	}
	if !pol.egress.inspectAll || pol.egress.inspectFrom != "--inspect-all" {
		t.Errorf("--inspect-all did not win: %+v", pol.egress)
	}
	from := pol.bindings["GITHUB_TOKEN"].rules[0].from[fHosts]
	if !strings.HasPrefix(from, "--bind GITHUB_TOKEN=*.example.com; narrowed by ") || !strings.HasSuffix(from, projectPolicy+" line 2") {
		t.Errorf("origin = %q", from)
	}
}

func TestProjectFileNarrows(t *testing.T) {
	user := "[egress]\ndefault = \"deny\"\nallow = [\"*.example.com\"]\n"
	names := []string{"ANTHROPIC_API_KEY", "GITHUB_TOKEN"}
	for _, tc := range []struct {
		name    string
		user    string
		project string
		check   func(t *testing.T, pol *policy)
	}{
		{"deny, default deny, inspect all", "", "[egress]\ndefault = \"deny\"\ndeny = [\"*.evil.example\"]\ninspect = \"all\"\n", func(t *testing.T, pol *policy) {
			e := pol.proxyEgress()
			if !e.DenyByDefault || len(e.Deny) != 1 || !pol.egress.inspectAll {
				t.Errorf("egress = %+v", e)
			}
		}},
		{"allow list within the user's", user, "[egress]\nallow = [\"a.example.com\", \"api.github.com:443\"]\n", func(t *testing.T, pol *policy) {
			if len(pol.egress.allow) != 2 || pol.egress.allow[0].text != "a.example.com" {
				t.Errorf("allow = %+v", pol.egress.allow)
			}
		}},
		{"hosts", "", "[secrets.GITHUB_TOKEN]\nhosts = [\"api.github.com\"]\n", func(t *testing.T, pol *policy) {
			want := []proxy.Rule{{Hosts: hosts(t, "api.github.com"), Places: []string{"header:authorization", "basic-auth"}}}
			if got := pol.rules()["GITHUB_TOKEN"]; !reflect.DeepEqual(got, want) {
				t.Errorf("GITHUB_TOKEN = %+v", got)
			}
		}},
		{"paths, methods, places", "", "[secrets.ANTHROPIC_API_KEY]\npaths = [\"/v1/messages*\"]\nmethods = [\"POST\"]\nplaces = [\"header:x-api-key\"]\n", func(t *testing.T, pol *policy) {
			want := []proxy.Rule{{Hosts: hosts(t, "api.anthropic.com"), Methods: []string{"POST"}, Paths: []string{"/v1/messages*"}, Places: []string{"header:x-api-key"}}}
			if got := pol.rules()["ANTHROPIC_API_KEY"]; !reflect.DeepEqual(got, want) {
				t.Errorf("ANTHROPIC_API_KEY = %+v", got)
			}
		}},
		{"an exact path under a prefix", "", "[secrets.ANTHROPIC_API_KEY]\npaths = [\"/api/hello\"]\n", func(t *testing.T, pol *policy) {
			if got := pol.rules()["ANTHROPIC_API_KEY"][0].Paths; !reflect.DeepEqual(got, []string{"/api/hello"}) {
				t.Errorf("paths = %v", got)
			}
		}},
		{"places of a rule that had none", "[secrets.GITHUB_TOKEN]\nhosts = [\"api.github.com\"]\n", "[secrets.GITHUB_TOKEN]\nplaces = [\"header:authorization\"]\n", func(t *testing.T, pol *policy) {
			if got := pol.rules()["GITHUB_TOKEN"][0].Places; !reflect.DeepEqual(got, []string{"header:authorization"}) {
				t.Errorf("places = %v", got)
			}
		}},
		{"narrowed to nothing", "[secrets.GITHUB_TOKEN]\nhosts = [\"api.github.com\"]\nplaces = [\"basic-auth\"]\n[[secrets.GITHUB_TOKEN.rule]]\nhosts = [\"github.com\"]\nplaces = [\"header:authorization\"]\n",
			"[secrets.GITHUB_TOKEN]\nplaces = [\"header:authorization\"]\nhosts = [\"api.github.com\"]\n", func(t *testing.T, pol *policy) {
				if got := pol.rules()["GITHUB_TOKEN"]; len(got) != 0 {
					t.Errorf("GITHUB_TOKEN = %+v, want no rules", got)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol, _, err := policyCase{user: tc.user, project: tc.project, names: names}.load(t)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, pol)
		})
	}
}

func TestProjectFileCannotWiden(t *testing.T) {
	user := "[egress]\ndefault = \"deny\"\nallow = [\"*.example.com\"]\ninspect = \"all\"\n"
	names := []string{"ANTHROPIC_API_KEY", "GITHUB_TOKEN", "MY_TOKEN"}
	for _, tc := range []struct {
		name, user, project string
		want                string // after "FILE "
	}{
		{"default allow", user, "[egress]\ndefault = \"allow\"\n", `line 2: egress.default = "allow" would widen the policy`},
		{"inspect bound", user, "# narrow\n[egress]\ninspect = \"bound\"\n", `line 3: egress.inspect = "bound" would widen`},
		{"allow outside the user's", user, "[egress]\nallow = [\"a.example.com\", \"example.org\"]\n", `line 2: egress.allow "example.org" would widen`},
		{"allow the apex of a wildcard", user, "[egress]\nallow = [\"example.com\"]\n", `line 2: egress.allow "example.com" would widen`},
		{"preset", "", "[secrets.MY_TOKEN]\npreset = \"openai\"\n", `line 2: a preset would widen`},
		{"rule", "", "[secrets.GITHUB_TOKEN]\nhosts = [\"api.github.com\"]\n[[secrets.GITHUB_TOKEN.rule]]\nhosts = [\"api.github.com\"]\n", `line 3: a [[secrets.GITHUB_TOKEN.rule]] table would widen`},
		{"bind an unbound secret", "", "\n[secrets.MY_TOKEN]\nhosts = [\"evil.example\"]\n", `line 2: a binding for MY_TOKEN (it has none) would widen`},
		{"another host", "", "[secrets.ANTHROPIC_API_KEY]\nhosts = [\"api.anthropic.com\", \"evil.example\"]\n", `line 2: host "evil.example" for ANTHROPIC_API_KEY would widen`},
		{"a wildcard over a bound host", "", "[secrets.ANTHROPIC_API_KEY]\nhosts = [\"*.anthropic.com\"]\n", `line 2: host "*.anthropic.com" for ANTHROPIC_API_KEY would widen`},
		{"another port", "", "[secrets.ANTHROPIC_API_KEY]\nhosts = [\"api.anthropic.com:8443\"]\n", `line 2: host "api.anthropic.com:8443" for ANTHROPIC_API_KEY would widen`},
		{"another method", "", "[secrets.ANTHROPIC_API_KEY]\nmethods = [\"POST\", \"DELETE\"]\n", `line 2: method DELETE for ANTHROPIC_API_KEY would widen`},
		{"another path", "", "[secrets.ANTHROPIC_API_KEY]\n\npaths = [\"/v1/*\"]\n", `line 3: path "/v1/*" for ANTHROPIC_API_KEY would widen`},
		{"another place", "", "[secrets.ANTHROPIC_API_KEY]\nplaces = [\"body\"]\n", `line 2: place "body" for ANTHROPIC_API_KEY would widen`},
		{"a whole kind of place", "", "[secrets.ANTHROPIC_API_KEY]\nplaces = [\"header\"]\n", `line 2: place "header" for ANTHROPIC_API_KEY would widen`},
		{"not loaded", "", "[secrets.ANTHROPIC_KEY]\nhosts = [\"api.anthropic.com\"]\n", `line 1: no secret named ANTHROPIC_KEY was loaded`},
		{"empty hosts", "", "[secrets.ANTHROPIC_API_KEY]\nhosts = []\n", `line 2: secrets.ANTHROPIC_API_KEY.hosts is empty`},
		{"bad syntax", "", "[egress\n", `line 2: expected '.' or ']'`},
		{"unknown key", "", "[egress]\nallow_all = true\n", `line 2: unknown key "allow_all"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, dir, err := policyCase{user: tc.user, project: tc.project, names: names}.load(t)
			if err == nil {
				t.Fatal("a widening project file was accepted")
			}
			want := filepath.Join(dir, projectPolicy) + " " + tc.want
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q\nwant it to contain %q", err, want)
			}
		})
	}
}

func TestPolicyErrorsNeverHoldRealValues(t *testing.T) {
	// load fails the test if an error holds the value.
	for _, file := range []string{
		"[secrets.A_KEY]\nhosts = [\"" + realOf("A_KEY") + "/\"]\n",
		"[secrets.A_KEY]\npaths = [\"" + realOf("A_KEY") + "\"]\nhosts=[\"a.example.com\"]\n",
		"[egress]\ndefault = \"" + realOf("A_KEY") + "\"\n",
		"x = \"" + realOf("A_KEY") + "\n",
		"[secrets." + strings.ReplaceAll(realOf("A_KEY"), "-", "_") + "]\nhosts=[\"a.example.com\"]\n",
	} {
		_, _, err := policyCase{user: file, explicit: true, names: []string{"A_KEY"}}.load(t)
		if err == nil {
			t.Fatalf("no error for %q", file)
		}
	}
	_, _, err := policyCase{user: "[egress]\ndefault = \"" + realOf("A_KEY") + "\"\n", explicit: true, names: []string{"A_KEY"}}.load(t)
	if err == nil || !strings.Contains(err.Error(), "<redacted A_KEY>") {
		t.Errorf("error %v: want the value redacted by name", err)
	}
	_, err = loadPolicy(policySources{binds: []string{"A_KEY=" + realOf("A_KEY") + "/"}}, loadedSecrets("A_KEY"))
	if err == nil || strings.Contains(err.Error(), realOf("A_KEY")) {
		t.Fatalf("--bind error = %v", err)
	}
}

// TestExamplePolicy: the commented example in examples/ is a valid policy,
// and so is the project file its comments suggest.
func TestExamplePolicy(t *testing.T) {
	example, err := os.ReadFile(filepath.Join("..", "examples", "policy.toml"))
	if err != nil {
		t.Fatal(err)
	}
	project := "[egress]\ndeny = [\"*.example.org\"]\n\n[secrets.ANTHROPIC_API_KEY]\npaths = [\"/v1/messages*\"]\n"
	if !strings.Contains(string(example), "#   deny = [\"*.example.org\"]") || !strings.Contains(string(example), "#   paths = [\"/v1/messages*\"]") {
		t.Fatal("the example's project snippet changed: update this test")
	}
	pol, _, err := policyCase{
		user: string(example), explicit: true, project: project,
		names: []string{"ANTHROPIC_API_KEY", "BILLING_TOKEN", "NPM_TOKEN", "DEPLOY_KEY"},
	}.load(t)
	if err != nil {
		t.Fatal(err)
	}
	r := pol.rules()
	if len(r["DEPLOY_KEY"]) != 2 || len(r["BILLING_TOKEN"]) != 1 || describe(r["NPM_TOKEN"]) != "npm.example.com" {
		t.Errorf("rules = %+v", r)
	}
	if got := r["ANTHROPIC_API_KEY"][0]; !reflect.DeepEqual(got.Paths, []string{"/v1/messages*"}) || !reflect.DeepEqual(got.Methods, []string{"POST", "GET", "HEAD"}) {
		t.Errorf("ANTHROPIC_API_KEY = %+v", got)
	}
	if e := pol.proxyEgress(); !e.DenyByDefault || len(e.Allow) != 2 || len(e.Deny) != 2 {
		t.Errorf("egress = %+v", e)
	}
}
