package launcher

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cloak-dev/cloak/proxy"
)

const mintedGood = `[secrets.A_KEY]
hosts = ["a.example.com"]

[[minted]]
name   = "GITHUB_APP_TOKEN"
host   = "api.github.com"
path   = "/app/installations/*"
field  = "token"
hosts  = ["api.github.com"]
places = ["header:authorization"]

[[minted]]
name  = "LOOSE_TOKEN"
host  = "auth.example.com:8443"
field = "access_token"
`

func TestMintedPolicy(t *testing.T) {
	pol, dir, err := policyCase{user: mintedGood, explicit: true, names: []string{"A_KEY"}}.load(t)
	if err != nil {
		t.Fatal(err)
	}
	gh, _ := proxy.ParseHostPattern("api.github.com")
	auth, _ := proxy.ParseHostPattern("auth.example.com:8443")
	want := []proxy.MintRule{
		{Host: gh, Path: "/app/installations/*", Field: "token", Name: "GITHUB_APP_TOKEN",
			Rules: []proxy.Rule{{Hosts: []proxy.HostPattern{gh}, Places: []string{"header:authorization"}}}},
		{Host: auth, Field: "access_token", Name: "LOOSE_TOKEN"},
	}
	if got := pol.proxyMinted(); !reflect.DeepEqual(got, want) {
		t.Fatalf("minted = %+v\nwant %+v", got, want)
	}
	if got := pol.proxyPolicy().Minted; !reflect.DeepEqual(got, want) {
		t.Errorf("the policy explain asks has minted = %+v", got)
	}
	file := filepath.Join(dir, "policy.toml")
	if pol.minted[0].from != file+" line 4" || pol.minted[1].from != file+" line 12" {
		t.Errorf("origins = %q, %q", pol.minted[0].from, pol.minted[1].from)
	}
	var out bytes.Buffer
	pol.show(&out)
	for _, s := range []string{
		"GITHUB_APP_TOKEN", "api.github.com/app/installations/*, field token", file + " line 4", "header:authorization",
		"LOOSE_TOKEN", "auth.example.com:8443 (any path), field access_token", "nowhere: the dummy is never swapped", file + " line 12",
	} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("policy show lacks %q:\n%s", s, out.String())
		}
	}
}

func TestBadMintedPolicy(t *testing.T) {
	const head = "[[minted]]\nname = \"M_TOKEN\"\nhost = \"auth.example.com\"\n"
	for _, tc := range []struct {
		name, file string
		want       string // in the error, after "FILE "
	}{
		{"unknown key", head + "field = \"token\"\nfeild = \"x\"\n", `line 5: unknown key "feild" in [minted]`},
		{"unknown key in second", head + "field = \"token\"\n[[minted]]\nname = \"N_TOKEN\"\nhost = \"auth.example.com\"\nfield = \"t\"\nmethods = [\"GET\"]\n", `line 9: unknown key "methods" in [minted]`},
		{"no field", head, `line 1: [[minted]] has no field`},
		{"no name", "[[minted]]\nhost = \"auth.example.com\"\nfield = \"token\"\n", `line 1: [[minted]] has no name`},
		{"no host", "[[minted]]\nname = \"M_TOKEN\"\nfield = \"token\"\n", `line 1: [[minted]] has no host`},
		{"bad host", "[[minted]]\nname = \"M_TOKEN\"\nhost = \"a.*.example.com\"\nfield = \"token\"\n", `line 3: host: bad host`},
		{"bad target host", head + "field = \"token\"\nhosts = [\"x/y\"]\n", `line 5: hosts: bad host`},
		{"bad path", head + "field = \"token\"\npath = \"app/*\"\n", `line 5: path: "app/*": a path pattern starts with /`},
		{"empty path", head + "field = \"token\"\npath = \"\"\n", `line 5: path: "": a path pattern starts with /`},
		{"bad place", head + "field = \"token\"\nhosts = [\"auth.example.com\"]\nplaces = [\"cookie\"]\n", `line 6: places: unknown place "cookie"`},
		{"places without hosts", head + "field = \"token\"\nplaces = [\"header\"]\n", `line 5: places without hosts`},
		{"empty hosts", head + "field = \"token\"\nhosts = []\n", `line 5: hosts is empty`},
		{"bad name", "[[minted]]\nname = \"M TOKEN\"\nhost = \"auth.example.com\"\nfield = \"token\"\n", `line 2: secret name "M TOKEN" is not an environment variable name`},
		{"name of a loaded secret", "[[minted]]\nname = \"A_KEY\"\nhost = \"auth.example.com\"\nfield = \"token\"\n", `line 2: A_KEY is the name of a loaded secret`},
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

// TestProjectMayNotMint: a [[minted]] table says where a new credential
// may go, so the project's file, which the agent can edit, may not hold
// one, even when the user's file has the very same table.
func TestProjectMayNotMint(t *testing.T) {
	table := "[[minted]]\nname = \"GITHUB_APP_TOKEN\"\nhost = \"api.github.com\"\nfield = \"token\"\nhosts = [\"api.github.com\"]\n"
	for _, user := range []string{"", table} {
		_, dir, err := policyCase{user: user, explicit: user != "", project: "[egress]\ndeny = [\"x.example.com\"]\n\n" + table, names: []string{"A_KEY"}}.load(t)
		want := filepath.Join(dir, projectPolicy) + " line 4: a [[minted]] table would widen the policy"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("user file %q: error %v\nwant it to contain %q", user, err, want)
		}
	}
}
