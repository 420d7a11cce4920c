package scrub

import "encoding/base64"

// minMiddle is the shortest base64 middle (see middles) that is matched. A
// middle drops up to two characters at each end of the encoding, so a short
// real value leaves a run short enough to turn up in ordinary base64 text by
// chance; 16 characters carry 96 bits of the real value.
const minMiddle = 16

// numMiddles is the number of middles returned by middles: three byte
// alignments times two alphabets.
const numMiddles = 6

// middles returns the base64 characters that encode only bytes of v when v
// sits inside a longer string, for each of the three alignments v can have
// relative to base64's 3-byte groups and for the standard and URL-safe
// alphabets. Any base64 (padded or not) of a string that contains v contains
// one of them. The characters at either end that mix v's bits with its
// neighbours' are left out, since they depend on what surrounds v.
//
// Index i of middles(real) and middles(dummy) have the same length when the
// two values do, so swapping one for the other keeps the rest of the encoding
// valid: it then decodes to the dummy, except for at most 4 bits of its first
// and of its last byte, which stay those of the real value.
func middles(v string) [numMiddles]string {
	var out [numMiddles]string
	for a, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for o := range 3 {
			// o zero bytes before v put it at alignment o; what they
			// encode into is cut off below.
			b := make([]byte, o+len(v))
			copy(b[o:], v)
			e := enc.EncodeToString(b)
			// Character k holds bits [6k, 6k+6) of b, and v holds bits
			// [8o, 8(o+len(v))): keep the characters wholly inside.
			start := (8*o + 5) / 6
			end := 8 * (o + len(v)) / 6
			out[3*a+o] = e[start:end]
		}
	}
	return out
}

// longMiddles returns the middles of v that are long enough to match.
func longMiddles(v string) []string {
	var out []string
	for _, m := range middles(v) {
		if len(m) >= minMiddle {
			out = append(out, m)
		}
	}
	return out
}
