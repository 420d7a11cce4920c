package scrub

import (
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

var encodings = []struct {
	name string
	enc  *base64.Encoding
}{
	{"std", base64.StdEncoding},
	{"raw std", base64.RawStdEncoding},
	{"URL", base64.URLEncoding},
	{"raw URL", base64.RawURLEncoding},
}

// A registry login in DOCKER_AUTH_CONFIG holds base64("user:"+token): the
// token sits inside a longer string, at any of the three byte alignments.
func TestEnvScrubsTokenInsideLongerBase64(t *testing.T) {
	gh := Secret{Name: "GITHUB_TOKEN", Real: "ghp_R3alT0kenR3alT0kenR3alT0kenR3alT0ken1", Dummy: "ghp_DummyDummyDummyDummyDummyDummyDummy22"}
	for _, e := range encodings {
		for _, pre := range []string{"user:", "u:", "ab:"} {
			for _, post := range []string{"", ":x", "\n"} {
				t.Run(e.name+" "+pre+"…"+post, func(t *testing.T) {
					auth := e.enc.EncodeToString([]byte(pre + gh.Real + post))
					cfg := `{"auths":{"ghcr.io":{"auth":"` + auth + `"}}}`
					if leaked := Leaks([]string{"DOCKER_AUTH_CONFIG=" + cfg}, []Secret{gh}); len(leaked) != 1 {
						t.Fatalf("Leaks does not see the token in %q", cfg)
					}
					out := mustEnv(t, []string{"GITHUB_TOKEN=" + gh.Real, "DOCKER_AUTH_CONFIG=" + cfg}, []Secret{gh}, nil)

					// Decode it as the child would.
					var got struct {
						Auths map[string]struct{ Auth string }
					}
					if err := json.Unmarshal([]byte(strings.TrimPrefix(out[1], "DOCKER_AUTH_CONFIG=")), &got); err != nil {
						t.Fatalf("child's DOCKER_AUTH_CONFIG is no longer JSON: %v", err)
					}
					plain, err := e.enc.DecodeString(got.Auths["ghcr.io"].Auth)
					if err != nil {
						t.Fatalf("child's auth is no longer base64: %v", err)
					}
					if strings.Contains(string(plain), gh.Real) {
						t.Fatalf("child decodes the real token from %q", got.Auths["ghcr.io"].Auth)
					}
					// All but the bits of the token's first and last bytes
					// that share a character with its neighbours are the
					// dummy's; the neighbours are intact.
					if want := gh.Dummy[1 : len(gh.Dummy)-1]; !strings.Contains(string(plain), want) {
						t.Errorf("child decodes %q, want it to hold %q", plain, want)
					}
					if !strings.HasPrefix(string(plain), pre[:len(pre)-1]) || !strings.HasSuffix(string(plain), post) {
						t.Errorf("child decodes %q, want the text around the token kept", plain)
					}
				})
			}
		}
	}
}

// middles must be exactly the characters that do not depend on v's
// neighbours: check them against encodings with two different neighbours.
func TestMiddlesDoNotDependOnNeighbours(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 3))
	for c := range 500 {
		v := randomText(rng, printable, 1, 60)
		mids := middles(v)
		for a, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			for o := range 3 {
				var got []string
				for _, fill := range []string{"\x00\x00\x00\x00", "\xff\xff\xff\xff"} {
					for after := range 3 {
						got = append(got, enc.EncodeToString([]byte(fill[:o]+v+fill[:after])))
					}
				}
				// The characters that are the same in every encoding and lie
				// within v's bits.
				first, last := (8*o+5)/6, 8*(o+len(v))/6
				stable := got[0][first:last]
				for _, g := range got {
					if g[first:last] != stable {
						t.Fatalf("case %d: characters %d..%d of %q depend on the neighbours", c, first, last, g)
					}
				}
				if m := mids[3*a+o]; m != stable {
					t.Fatalf("case %d: middle %q at alignment %d, want %q", c, m, o, stable)
				}
				// One character more at either end would depend on the
				// neighbours (unless v is too short for any).
				if first > 0 && first < last && got[0][first-1] == got[3][first-1] {
					t.Fatalf("case %d: character %d before the middle does not depend on the neighbour", c, first-1)
				}
				if got[1][last] == got[4][last] {
					t.Fatalf("case %d: character %d after the middle does not depend on the neighbour", c, last)
				}
			}
		}
	}
}
