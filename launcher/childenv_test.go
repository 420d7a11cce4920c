package launcher

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloak-dev/cloak/proxy"
	"github.com/cloak-dev/cloak/scrub"
)

func testRules(t *testing.T, name string, hosts ...string) map[string][]proxy.Rule {
	t.Helper()
	var hp []proxy.HostPattern
	for _, h := range hosts {
		p, err := proxy.ParseHostPattern(h)
		if err != nil {
			t.Fatal(err)
		}
		hp = append(hp, p)
	}
	return map[string][]proxy.Rule{name: {{Hosts: hp}}}
}

func TestChildEnvReplacesAndWires(t *testing.T) {
	sec := scrub.Secret{Name: "ANTHROPIC_API_KEY", Real: fakeReal, Dummy: "sk-ant-api03-DUMMYDUMMYDUMMYDUMMYDUMMYDUMMYDUMM"}
	parent := []string{
		"PATH=/bin", "HTTPS_PROXY=http://corp:3128", "NO_PROXY=api.anthropic.com,.internal",
		"SSL_CERT_FILE=/etc/ssl/mine.pem", "LEAKY=Bearer " + fakeReal,
	}
	var warned []string
	env, err := childEnv(childEnvInput{
		parent: parent, secrets: []scrub.Secret{sec}, plain: []secret{{name: "PORT", real: "3000"}},
		proxyURL: "http://cloak:pw@127.0.0.1:1", extraPath: "/t/ca.pem", bundlePath: "/t/bundle.pem",
		session: "s1", rules: testRules(t, "ANTHROPIC_API_KEY", "api.anthropic.com"),
		warn: func(s string) { warned = append(warned, s) },
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ANTHROPIC_API_KEY": sec.Dummy, "LEAKY": "Bearer " + sec.Dummy, "PORT": "3000",
		"HTTPS_PROXY": "http://cloak:pw@127.0.0.1:1", "https_proxy": "http://cloak:pw@127.0.0.1:1",
		"NO_PROXY": noProxy, "no_proxy": noProxy, "SSL_CERT_FILE": "/t/bundle.pem",
		"GIT_SSL_CAINFO": "/t/bundle.pem", "NODE_EXTRA_CA_CERTS": "/t/ca.pem", "CLOAK": "1", "PATH": "/bin",
	}
	for k, v := range want {
		if got, _ := lookup(env, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if strings.Contains(strings.Join(env, "\n"), fakeReal) {
		t.Fatal("real value in the child's environment")
	}
	if len(warned) != 0 {
		t.Errorf("unexpected warnings %q", warned)
	}
}

func TestChildEnvDropsBaseURLOutsideBinding(t *testing.T) {
	sec := scrub.Secret{Name: "ANTHROPIC_API_KEY", Real: fakeReal, Dummy: "sk-ant-api03-DUMMYDUMMYDUMMYDUMMYDUMMYDUMMYDUMM"}
	for _, tc := range []struct {
		url  string
		keep bool
	}{
		{"https://api.anthropic.com", true},
		{"https://api.anthropic.com:443/", true},
		{"http://api.anthropic.com", false},
		{"https://llm-gateway.example.test", false},
		{"https://api.anthropic.com:8443", false},
	} {
		var warned []string
		env, err := childEnv(childEnvInput{
			parent: []string{"ANTHROPIC_BASE_URL=" + tc.url}, secrets: []scrub.Secret{sec},
			rules: testRules(t, "ANTHROPIC_API_KEY", "api.anthropic.com"),
			warn:  func(s string) { warned = append(warned, s) },
		})
		if err != nil {
			t.Fatal(err)
		}
		_, kept := lookup(env, "ANTHROPIC_BASE_URL")
		if kept != tc.keep || (len(warned) == 0) == !tc.keep {
			t.Errorf("%s: kept %v (warned %q), want kept %v", tc.url, kept, warned, tc.keep)
		}
	}
}

func TestDummiesAreStoredPrivatelyAndReused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "dummies.json")
	loaded := []secret{{name: "K", real: fakeReal}, {name: "PORT", real: "80"}}
	first, err := assignDummies(path, loaded)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 || first[0].Dummy == fakeReal || len(first[0].Dummy) != len(fakeReal) {
		t.Fatalf("got %v", first)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("store mode %v (%v)", fi.Mode(), err)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), fakeReal) {
		t.Fatal("store holds the real value")
	}
	second, err := assignDummies(path, loaded)
	if err != nil || second[0].Dummy != first[0].Dummy {
		t.Fatal("dummy not reused")
	}
	// A damaged store costs only new dummies.
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := assignDummies(path, loaded); err != nil {
		t.Fatalf("damaged store: %v", err)
	}
}
