package scrub

import (
	"crypto/rand"
	"fmt"
	"strings"
)

// prefixes are the known token prefixes a dummy keeps, so that the agent and
// the tools it runs still recognise the kind of credential (some check the
// prefix before sending a request at all).
var prefixes = []string{
	"sk-ant-api03-", "sk-ant-oat01-", "sk-ant-admin01-", "sk-ant-",
	"sk-proj-", "sk-svcacct-", "sk-admin-", "sk-or-v1-", "sk-",
	"github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
	"glpat-", "xoxb-", "xoxp-", "xapp-", "hf_", "npm_", "gsk_",
	"AKIA", "ASIA", "AIza",
	"pk_live_", "sk_live_", "pk_test_", "sk_test_", "rk_live_", "rk_test_",
	"dop_v1_", "SG.",
}

const (
	digits   = "0123456789"
	lowerHex = "0123456789abcdef"
	upperHex = "0123456789ABCDEF"
	alnum    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// Dummy returns a dummy for real. If prev (a dummy handed out in an earlier
// run, may be "") still fits real — same length, same known prefix, the rest
// drawn from the same alphabet, prev != real, and neither contains the other
// — it returns prev, so the dummy is stable across runs. Otherwise it makes a
// new random one with crypto/rand.
//
// Shape: same length as real. If real starts with a known prefix, the dummy
// starts with the same prefix (longest match wins), provided at least MinLen
// bytes follow it; otherwise a shorter known prefix or none is used, so the
// random part is never too short to tell the dummy from real. The rest is
// random from one alphabet chosen by the class of the rest of real: all
// decimal digits, all lowercase hex, all uppercase hex, else [A-Za-z0-9].
// Per-position character classes are never copied: that would leak the
// real value's pattern.
//
// It errors if real is shorter than MinLen or longer than 64 KiB, or if
// crypto/rand fails. Errors give the length, never the value.
func Dummy(real, prev string) (string, error) {
	if len(real) < MinLen {
		return "", fmt.Errorf("scrub: secret is %d bytes, shorter than the minimum of %d", len(real), MinLen)
	}
	if len(real) > maxLen {
		return "", fmt.Errorf("scrub: secret is %d bytes, longer than the maximum of %d", len(real), maxLen)
	}
	prefix := knownPrefix(real)
	alphabet := classOf(real[len(prefix):])
	if fits(prev, real, prefix, alphabet) {
		return prev, nil
	}
	// With at least MinLen random bytes a clash with real is at most 1e-8
	// per try; a few tries make a failure here practically impossible.
	for range 8 {
		rest, err := randomString(alphabet, len(real)-len(prefix))
		if err != nil {
			return "", err
		}
		if d := prefix + rest; d != real {
			return d, nil
		}
	}
	return "", fmt.Errorf("scrub: could not make a dummy different from a %d-byte secret", len(real))
}

// knownPrefix returns the longest known prefix of real that leaves at least
// MinLen bytes after it, or "".
func knownPrefix(real string) string {
	best := ""
	for _, p := range prefixes {
		if len(p) > len(best) && len(real)-len(p) >= MinLen && strings.HasPrefix(real, p) {
			best = p
		}
	}
	return best
}

// classOf picks the alphabet for a dummy from the class of rest.
func classOf(rest string) string {
	for _, alphabet := range []string{digits, lowerHex, upperHex} {
		if onlyFrom(rest, alphabet) {
			return alphabet
		}
	}
	return alnum
}

func onlyFrom(s, alphabet string) bool {
	for i := range len(s) {
		if strings.IndexByte(alphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

// fits reports whether prev can stay the dummy for real. The rest of prev
// only has to be drawn from real's alphabet, not to have the same class: a
// short random alphanumeric dummy may happen to be all hex, and it must stay.
func fits(prev, real, prefix, alphabet string) bool {
	return len(prev) == len(real) &&
		prev != real &&
		!strings.Contains(prev, real) && !strings.Contains(real, prev) &&
		strings.HasPrefix(prev, prefix) &&
		onlyFrom(prev[len(prefix):], alphabet)
}

// randomString returns n bytes drawn uniformly from alphabet.
func randomString(alphabet string, n int) (string, error) {
	// Bytes at or above limit are rejected, so that every letter is equally
	// likely (256 is not a multiple of 10 or 62).
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4+8)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("scrub: reading random bytes: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}
