package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMintedTokenWithCurl: a [[minted]] table in the user's policy file.
// The child fetches a GitHub App installation token with curl and sees
// only a dummy; sending the dummy back to the host the table allows
// gives the upstream the real token; the real token is nowhere in what
// cloak or the child printed or wrote.
func TestMintedTokenWithCurl(t *testing.T) {
	need(t, "curl", "sed")
	minted := randomReal("ghs_", 36)
	u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost && r.URL.Path == "/app/installations/1/access_tokens" {
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(map[string]string{"token": minted, "expires_at": "2030-01-01T00:00:00Z"})
			return
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	})
	s := newSession(t, u, map[string]string{"ANTHROPIC_API_KEY": randomReal("sk-ant-api03-", 60)})
	s.reals = append(s.reals, minted)
	pol := filepath.Join(s.home, "policy.toml")
	if err := os.WriteFile(pol, []byte(`[[minted]]
name   = "GITHUB_APP_TOKEN"
host   = "api.github.com"
path   = "/app/installations/*"
field  = "token"
hosts  = ["api.github.com"]
places = ["header:authorization"]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	s.planted = append(s.planted, pol)

	r := s.run([]string{"--policy", pol}, "sh", "-c", `
		tok=$(curl -sS -X POST https://api.github.com/app/installations/1/access_tokens | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
		echo "token=$tok"
		curl -sS -o /dev/null -w '%{http_code}\n' -H "Authorization: token $tok" https://api.github.com/repos`)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Fields(r.stdout)
	if len(lines) != 2 || lines[1] != "200" {
		t.Fatalf("child printed %q, want the token line and 200\nstderr: %s", r.stdout, r.stderr)
	}
	dummy := strings.TrimPrefix(lines[0], "token=")
	if len(dummy) != len(minted) || dummy == minted || !strings.HasPrefix(dummy, "ghs_") {
		t.Fatalf("the child got %d bytes for the token (the real one: %v), want a dummy as long as the real one (%d)", len(dummy), dummy == minted, len(minted))
	}

	reqs := s.upstream.requests()
	if len(reqs) != 2 || reqs[1].URI != "/repos" {
		t.Fatalf("upstream saw %d requests, want the token call and /repos", len(reqs))
	}
	if got := reqs[1].Header.Get("Authorization"); got != "token "+minted {
		t.Errorf("/repos got Authorization of %d bytes, want the real minted token", len(got))
	}
	if !s.auditHas(`"minted":["GITHUB_APP_TOKEN"]`, "/app/installations/1/access_tokens") {
		t.Errorf("no audit line records the minting:\n%s", strings.Join(s.auditLines(), "\n"))
	}
	if !s.auditHas(`"injected":["GITHUB_APP_TOKEN"]`, "/repos") {
		t.Errorf("no audit line records the swap:\n%s", strings.Join(s.auditLines(), "\n"))
	}
}
