package scrub

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// printable is the pool random alphabets are drawn from: printable ASCII plus
// a few multi-byte runes and characters that JSON escapes.
var printable = func() []rune {
	var rs []rune
	for r := rune(0x20); r < 0x7f; r++ {
		rs = append(rs, r)
	}
	return append(rs, 'é', '€', 'ü', '\u2028', '\t', '\n')
}()

func randomText(rng *rand.Rand, alphabet []rune, minBytes, maxBytes int) string {
	n := minBytes + rng.IntN(maxBytes-minBytes+1)
	var b strings.Builder
	for b.Len() < n {
		b.WriteRune(alphabet[rng.IntN(len(alphabet))])
	}
	return b.String()
}

func randomReal(rng *rand.Rand) string {
	alphabet := make([]rune, 1+rng.IntN(len(printable)))
	for i := range alphabet {
		alphabet[i] = printable[rng.IntN(len(printable))]
	}
	prefix := ""
	if rng.IntN(4) == 0 {
		prefix = prefixes[rng.IntN(len(prefixes))]
	}
	return prefix + randomText(rng, alphabet, max(MinLen-len(prefix), 1), 80-len(prefix))
}

func TestEnvNeverLeaksRandomSecrets(t *testing.T) {
	rng := rand.New(rand.NewPCG(2024, 7))
	for c := range 2000 {
		secrets := make([]Secret, 1+rng.IntN(4))
		for i := range secrets {
			real := randomReal(rng)
			dummy, err := Dummy(real, "")
			if err != nil {
				t.Fatalf("case %d: Dummy(%d bytes): %v", c, len(real), err)
			}
			secrets[i] = Secret{Name: fmt.Sprintf("SECRET_%d", i), Real: real, Dummy: dummy}
		}
		var parent []string
		for i, s := range secrets {
			if rng.IntN(2) == 0 {
				parent = append(parent, fmt.Sprintf("SECRET_%d=%s", i, s.Real))
			}
		}
		for i := range 3 + rng.IntN(8) {
			var v strings.Builder
			for range rng.IntN(4) {
				s := secrets[rng.IntN(len(secrets))]
				v.WriteString(randomText(rng, printable, 0, 20))
				if rng.IntN(3) == 0 {
					// The base64 of a longer string that holds the real
					// value, at any alignment.
					enc := encodings[rng.IntN(len(encodings))].enc
					v.WriteString(enc.EncodeToString([]byte(randomText(rng, printable, 0, 5) + s.Real + randomText(rng, printable, 0, 5))))
					continue
				}
				v.WriteString(forms(s.Real)[rng.IntN(numForms)])
			}
			v.WriteString(randomText(rng, printable, 0, 20))
			parent = append(parent, fmt.Sprintf("VAR_%d=%s", i, v.String()))
		}

		out, err := Env(parent, secrets, nil)
		if err != nil {
			t.Fatalf("case %d: Env: %v\nparent %q", c, err, parent)
		}
		if len(out) != len(parent) {
			t.Errorf("case %d: %d entries in, %d out", c, len(parent), len(out))
		}
		if leaked := Leaks(out, secrets); leaked != nil {
			t.Fatalf("case %d: leaks %v\nparent %q\nout %q", c, leaked, parent, out)
		}
		for _, e := range out {
			for _, s := range secrets {
				if strings.Contains(e, s.Real) {
					t.Fatalf("case %d: %s in %q", c, s.Name, e)
				}
			}
		}
	}
}
