package launcher

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloak-dev/cloak/scrub"
)

const claudeDummy = "sk-ant-api03-DUMMYDUMMYDUMMYDUMMYDUMMYDUMMYDUMM"

// settingsOf returns the JSON cloak passed with --settings, and the rest.
func settingsOf(t *testing.T, argv []string) (map[string]any, []string) {
	t.Helper()
	if len(argv) < 3 || argv[1] != "--settings" {
		t.Fatalf("argv %q does not start with cloak's --settings", argv)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(argv[2]), &doc); err != nil {
		t.Fatalf("--settings is not JSON: %v", err)
	}
	return doc, append([]string{argv[0]}, argv[3:]...)
}

func TestClaudeArgs(t *testing.T) {
	secrets := []scrub.Secret{{Name: "ANTHROPIC_API_KEY", Real: fakeReal, Dummy: claudeDummy}}
	env := []string{"https_proxy=http://cloak:pw@127.0.0.1:1", "NODE_EXTRA_CA_CERTS=/t/ca.pem", "CLOAK=1", "HOME=/h"}
	dir := t.TempDir()
	file := filepath.Join(dir, "mine.json")
	if err := os.WriteFile(file, []byte(`{"env":{"FOO":"from-file"},"model":"opus"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		argv     []string
		rest     []string          // argv without cloak's --settings
		env      map[string]string // must be in the settings' env block
		keep     map[string]any    // other top-level settings kept
		settings []settingsFile
		warn     []string
	}{
		{
			name: "plain", argv: []string{"claude", "-p", "hi"}, rest: []string{"claude", "-p", "hi"},
			env: map[string]string{"ANTHROPIC_API_KEY": claudeDummy, "https_proxy": "http://cloak:pw@127.0.0.1:1",
				"NODE_EXTRA_CA_CERTS": "/t/ca.pem", "ANTHROPIC_BASE_URL": "", "ANTHROPIC_AUTH_TOKEN": "", "HOME": "<absent>"},
			keep: map[string]any{"apiKeyHelper": ""},
		},
		{
			name: "the user's --settings JSON is merged under cloak's", argv: []string{"claude", "--settings", `{"env":{"FOO":"bar","https_proxy":"http://x:1"},"permissions":{"allow":["Bash"]}}`, "-p", "hi"},
			rest: []string{"claude", "-p", "hi"},
			env:  map[string]string{"FOO": "bar", "https_proxy": "http://cloak:pw@127.0.0.1:1"},
			keep: map[string]any{"permissions": map[string]any{"allow": []any{"Bash"}}},
			warn: []string{"claude's --settings sets env.https_proxy: cloak passes its own value"},
		},
		{
			name: "the user's --settings=FILE is merged under cloak's", argv: []string{"claude", "--settings=mine.json"},
			rest: []string{"claude"}, env: map[string]string{"FOO": "from-file"}, keep: map[string]any{"model": "opus"},
		},
		{
			name: "--settings after -- is an argument", argv: []string{"claude", "--", "--settings", "x"},
			rest: []string{"claude", "--", "--settings", "x"},
		},
		{
			name: "a real value under another name is replaced by the dummy",
			argv: []string{"claude"}, rest: []string{"claude"},
			settings: []settingsFile{{path: "/p/settings.json", raw: []byte("k: " + fakeReal), env: map[string]string{"MY_KEY": "Bearer " + fakeReal}}},
			env:      map[string]string{"MY_KEY": "Bearer " + claudeDummy},
			warn:     []string{"/p/settings.json holds the real value of ANTHROPIC_API_KEY"},
		},
		{
			name: "managed settings cannot be overridden: said so",
			argv: []string{"claude"}, rest: []string{"claude"},
			settings: []settingsFile{{path: "/etc/m.json", managed: true, env: map[string]string{"https_proxy": "http://corp:1"}, helper: true}},
			warn:     []string{"/etc/m.json (managed settings) sets env.https_proxy", "/etc/m.json (managed settings) sets apiKeyHelper"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run, err := claudeArgs(claudeInput{argv: tc.argv, env: env, secrets: secrets, settings: tc.settings, dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			doc, rest := settingsOf(t, run.argv)
			if strings.Join(rest, "\x00") != strings.Join(tc.rest, "\x00") {
				t.Errorf("rest of argv %q, want %q", rest, tc.rest)
			}
			block, _ := doc["env"].(map[string]any)
			for k, want := range tc.env {
				got, ok := block[k]
				if want == "<absent>" {
					if ok {
						t.Errorf("env.%s set", k)
					}
					continue
				}
				if got != want {
					t.Errorf("env.%s = %q, want %q", k, got, want)
				}
			}
			for k, want := range tc.keep {
				if g, _ := json.Marshal(doc[k]); string(g) != mustJSON(want) {
					t.Errorf("%s = %s, want %s", k, g, mustJSON(want))
				}
			}
			all := strings.Join(run.warnings, "\n")
			for _, w := range tc.warn {
				if !strings.Contains(all, w) {
					t.Errorf("no warning %q in:\n%s", w, all)
				}
			}
			if strings.Contains(all+strings.Join(run.argv, " "), fakeReal) {
				t.Error("a warning or the argv holds the real value")
			}
		})
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestClaudeArgsRefusesWhatItCannotMerge(t *testing.T) {
	secrets := []scrub.Secret{{Name: "ANTHROPIC_API_KEY", Real: fakeReal, Dummy: claudeDummy}}
	for _, argv := range [][]string{
		{"claude", "--settings", "{not json " + fakeReal},
		{"claude", "--settings", "/nonexistent/settings.json"},
	} {
		_, err := claudeArgs(claudeInput{argv: argv, secrets: secrets, dir: t.TempDir()})
		if err == nil {
			t.Fatalf("%q: no error", argv)
		}
		if strings.Contains(err.Error(), fakeReal) {
			t.Fatal("the error holds the real value")
		}
	}
}

func TestOnlyClaudeGetsSettings(t *testing.T) {
	for cmd, want := range map[string]bool{"claude": true, "/usr/local/bin/claude": true, "claude-code": false, "sh": false, "claude.exe": false} {
		if isClaude(cmd) != want {
			t.Errorf("isClaude(%q) = %v", cmd, !want)
		}
	}
}

func TestInsideSession(t *testing.T) {
	ok := []string{"CLOAK=1", "CLOAK_SESSION=0123456789ab", "https_proxy=http://cloak:pw@127.0.0.1:4000"}
	cases := []struct {
		name string
		env  []string
		want bool
	}{
		{"a session", ok, true},
		{"no CLOAK", ok[1:], false},
		{"CLOAK=0", append([]string{"CLOAK=0"}, ok[1:]...), false},
		{"short id", []string{"CLOAK=1", "CLOAK_SESSION=0123", ok[2]}, false},
		{"proxy elsewhere", []string{"CLOAK=1", ok[1], "https_proxy=http://cloak:pw@10.0.0.1:4000"}, false},
		{"proxy of another user", []string{"CLOAK=1", ok[1], "https_proxy=http://corp:pw@127.0.0.1:4000"}, false},
		{"no proxy", ok[:2], false},
	}
	for _, tc := range cases {
		if _, got := insideSession(tc.env); got != tc.want {
			t.Errorf("%s: insideSession = %v", tc.name, got)
		}
	}
}

func TestShellInitNames(t *testing.T) {
	for _, sh := range Shells {
		text, err := ShellInit(sh)
		if err != nil || !strings.Contains(text, "command cloak run -- claude") {
			t.Errorf("%s: %v\n%s", sh, err, text)
		}
	}
	if _, err := ShellInit("csh"); err == nil {
		t.Error("csh accepted")
	}
}
