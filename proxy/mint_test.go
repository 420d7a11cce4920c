package proxy

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const realMinted = "gho_MINTEDREALTOKENMINTEDREALTOKEN4567"

func withMint(c *Config) {
	gh, _ := ParseHostPattern("api.github.com")
	c.Minted = []MintRule{{
		Host: gh, Path: "/login/oauth/access_token", Field: "access_token", Name: "GITHUB_OAUTH",
		Rules: []Rule{{Hosts: []HostPattern{gh}, Places: []string{"header:authorization"}}},
	}}
}

// tokenWorld answers the token endpoint with a fresh real token, and
// echoes the Authorization header it gets everywhere else.
func tokenWorld(t *testing.T, form bool, mutate ...func(*Config)) *world {
	return newWorld(t, func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login/oauth/access_token" {
			if form {
				rw.Header().Set("Content-Type", "application/x-www-form-urlencoded")
				rw.Write([]byte("access_token=" + realMinted + "&scope=repo&token_type=bearer"))
				return
			}
			rw.Header().Set("Content-Type", "application/json")
			json.NewEncoder(rw).Encode(map[string]string{"access_token": realMinted, "token_type": "bearer"})
			return
		}
		rw.Write([]byte("you sent " + r.Header.Get("Authorization")))
	}, append([]func(*Config){withMint}, mutate...)...)
}

func TestMintedTokenIsCloaked(t *testing.T) {
	for _, form := range []bool{false, true} {
		w := tokenWorld(t, form)
		res, body := w.do(mustReq("POST", "https://api.github.com/login/oauth/access_token"))
		if res.StatusCode != 200 {
			t.Fatalf("status %d: %s", res.StatusCode, body)
		}
		if strings.Contains(body, realMinted) {
			t.Fatal("the child got the minted real token")
		}
		var dummy string
		if form {
			q, _ := url.ParseQuery(body)
			dummy = q.Get("access_token")
		} else {
			var tok map[string]string
			if err := json.Unmarshal([]byte(body), &tok); err != nil {
				t.Fatalf("token response no longer JSON: %q", body)
			}
			dummy = tok["access_token"]
		}
		if len(dummy) != len(realMinted) || !strings.HasPrefix(dummy, "gho_") || dummy == realMinted {
			t.Fatalf("child's token %q is not a same-shape dummy", dummy)
		}
		l := w.waitAudit(decisionAllowed)
		if m, _ := l["minted"].([]any); len(m) != 1 || m[0] != "GITHUB_OAUTH" {
			t.Errorf("audit minted = %v", l["minted"])
		}

		// The dummy works where the rules allow, and the upstream's echo
		// of the real token comes back as the dummy.
		req := mustReq("GET", "https://api.github.com/user")
		req.Header.Set("Authorization", "Bearer "+dummy)
		res, body = w.do(req)
		if res.StatusCode != 200 || body != "you sent Bearer "+dummy {
			t.Fatalf("got %d %q, want the echo redacted to the dummy", res.StatusCode, body)
		}
		if got := w.seenRequests()[1].Header.Get("Authorization"); got != "Bearer "+realMinted {
			t.Fatalf("upstream got %q, want the minted real token", got)
		}
		// Elsewhere it is a tripwire like any dummy.
		req = mustReq("GET", "https://api.anthropic.com/v1/models")
		req.Header.Set("Authorization", "Bearer "+dummy)
		if res, _ := w.do(req); res.StatusCode != http.StatusForbidden {
			t.Fatalf("minted dummy to another host: status %d, want 403", res.StatusCode)
		}
		w.auditMu.Lock()
		leaked := strings.Contains(w.audit.String(), realMinted)
		w.auditMu.Unlock()
		if leaked {
			t.Fatal("the audit log holds the minted real token")
		}
	}
}

func TestMintedTokenResponseTooLargeRefused(t *testing.T) {
	w := newWorld(t, func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		json.NewEncoder(rw).Encode(map[string]string{"access_token": realMinted, "pad": strings.Repeat("x", mintMax)})
	}, withMint)
	res, body := w.do(mustReq("POST", "https://api.github.com/login/oauth/access_token"))
	if res.StatusCode != http.StatusBadGateway || strings.Contains(body, realMinted) {
		t.Fatalf("got %d, want 502 without the token", res.StatusCode)
	}
}

func TestOtherPathsMintNothing(t *testing.T) {
	w := tokenWorld(t, false)
	res, body := w.do(mustReq("GET", "https://api.github.com/login/oauth/other"))
	if res.StatusCode != 200 || !strings.HasPrefix(body, "you sent") {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
	if n := len(w.proxy.secrets().list); n != 2 {
		t.Fatalf("%d secrets after an unrelated response, want the 2 configured", n)
	}
}

func TestMintDummy(t *testing.T) {
	for _, real := range []string{realMinted, "ya29.a0AfB_byC1234567890abcdefghijklmnop", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "0123456789abcdef"} {
		a, err := mintDummy(real)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := mintDummy(real)
		if len(a) != len(real) || a == real || a == b {
			t.Errorf("mintDummy(%d bytes) = %d bytes, equal to real %v, repeatable %v", len(real), len(a), a == real, a == b)
		}
		for _, p := range []string{"gho_", "ya29."} {
			if strings.HasPrefix(real, p) && !strings.HasPrefix(a, p) {
				t.Errorf("dummy lost the prefix %q", p)
			}
		}
	}
}

// TestMintedTokenInUnknownEscapeRefused: a token the redaction cannot
// find in the raw body (JSON \u escapes) is refused, not handed over.
func TestMintedTokenInUnknownEscapeRefused(t *testing.T) {
	w := newWorld(t, func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		rw.Write([]byte(`{"access_token":"\u0067` + realMinted[1:] + `"}`))
	}, withMint)
	res, body := w.do(mustReq("POST", "https://api.github.com/login/oauth/access_token"))
	if res.StatusCode != http.StatusBadGateway || strings.Contains(body, realMinted[1:]) {
		t.Fatalf("got %d %q, want 502 without the token", res.StatusCode, body)
	}
}
