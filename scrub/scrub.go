// Package scrub turns the parent environment and a set of secrets into the
// environment of the child agent, and makes the dummy values that stand in
// for the real secrets there.
//
// The package is pure (no files, network, processes, logging or reads of the
// environment) so that its one job can be tested exhaustively on its own.
//
// # Security
//
// Invariant: when Env returns without error, no real secret value appears in
// the child environment, under any variable name, as a whole value or as a
// substring, either raw or in any of these encoded forms: url.QueryEscape,
// url.PathEscape, the inside of a JSON string (json.Marshal, with and
// without HTML escaping), and standard or URL-safe base64, with or without
// padding, of the value alone or of a longer string that contains it (such as
// HTTP Basic credentials, base64("user:"+token), in DOCKER_AUTH_CONFIG). Env
// does not trust its own replacement for this: it checks its result with
// Leaks and returns an error rather than a leaky environment.
//
// Dummies come from crypto/rand and reveal nothing of the real value but its
// length, its known prefix (such as "sk-ant-api03-") and its alphabet class
// (decimal digits, lowercase hex, uppercase hex or alphanumeric).
//
// Limits, stated honestly:
//   - Inside the base64 of a longer string, only the characters that encode
//     the real value alone are recognised and replaced. Up to 4 bits of its
//     first and of its last byte share a character with its neighbours and
//     stay as they were, so the child decodes the dummy with those bits of
//     the real value (the first byte is usually part of a public prefix such
//     as "ghp_"). A real value shorter than 13 bytes leaves too few such
//     characters to tell apart from other base64 and is not recognised there
//     (at alignment 0 from 12 bytes). base64 broken into lines (MIME, PEM) is
//     not recognised.
//   - Other encodings (hex, double URL escaping, rot13, ...) are not handled.
//   - Secret's formatting methods stop accidental printing only where fmt and
//     the encoders can call them: fmt prints a Secret held in an unexported
//     struct field field by field, Real included.
package scrub

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// MinLen is the shortest real value cloak accepts: anything shorter cannot be
// told apart from ordinary text when swapping or scrubbing.
const MinLen = 8

// maxLen bounds a real value so that a stray file read by mistake does not
// turn into megabytes of patterns.
const maxLen = 64 << 10

// maxRounds bounds the replacement passes over one string. A second pass is
// needed only when a replacement happens to form a new occurrence together
// with its neighbours, which random dummies make vanishingly rare.
const maxRounds = 4

// ErrBadSecret is returned (wrapped with the secret's Name, never its value)
// for a secret Env cannot use safely.
var ErrBadSecret = errors.New("bad secret")

// Secret is one credential. Its String, GoString, Format, MarshalJSON and
// MarshalText methods never show Real (they show e.g.
// `ANTHROPIC_API_KEY=<redacted>`), so it cannot leak through fmt, %v, %#v,
// encoding/json or a logger by accident.
type Secret struct {
	Name  string // environment variable name, e.g. ANTHROPIC_API_KEY
	Real  string
	Dummy string
}

// String shows the name only.
func (s Secret) String() string { return s.Name + "=<redacted>" }

// GoString keeps %#v from printing the fields.
func (s Secret) GoString() string {
	return fmt.Sprintf("scrub.Secret{Name:%q, Real:<redacted>}", s.Name)
}

// Format applies every verb to String (GoString for %#v). Without it fmt
// would skip String for verbs such as %d and print the fields, Real included.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, s.GoString())
		return
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), s.String())
}

// MarshalJSON encodes the Secret as the JSON string of String.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText returns String, for encoders and loggers that use it.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Env returns the child's environment. parent is os.Environ()-style
// "KEY=VALUE" entries.
//
// For every entry: if KEY is the Name of a secret, the value becomes that
// secret's Dummy; otherwise every occurrence of every secret's Real value
// inside VALUE, and of its encoded forms (see the package doc), is replaced
// by the same encoding of its Dummy. Longer forms are replaced before shorter
// ones, so a secret that is a substring of another does not break the longer
// one. Names are scrubbed the same way, since Leaks looks at them too.
//
// Entries without "=" are dropped, and so is every entry whose KEY is in drop
// (drop wins over a secret of the same Name). The others keep their order,
// duplicates included. Secrets whose Name is not in parent are not added; use
// Set for that.
//
// Each secret needs a unique Name without "=", a Real of at least MinLen
// bytes and a Dummy that contains no secret's real value. Otherwise Env
// returns an error wrapping ErrBadSecret that names the secret, never its
// value. Two secrets may share a Real (e.g. GH_TOKEN and GITHUB_TOKEN): text
// that is not a named variable then gets the Dummy of the first of them.
//
// Env fails closed: if a real value would still be in the result, it returns
// an error. That only happens in contrived cases, such as a real value
// containing "=" whose parts are a variable's name and the start of its value.
func Env(parent []string, secrets []Secret, drop []string) ([]string, error) {
	dummies, err := check(secrets)
	if err != nil {
		return nil, err
	}
	ps := compile(secrets)
	out := make([]string, 0, len(parent))
	for _, e := range parent {
		key, val, ok := strings.Cut(e, "=")
		if !ok || slices.Contains(drop, key) {
			continue
		}
		newVal, named := dummies[key]
		if !named {
			newVal = ps.replace(val)
		}
		newKey := ps.replace(key)
		if newKey == key && newVal == val {
			out = append(out, e) // unchanged: no allocation
			continue
		}
		out = append(out, newKey+"="+newVal)
	}
	if leaked := Leaks(out, secrets); len(leaked) > 0 {
		return nil, fmt.Errorf("scrub: real value of %s still in the child environment after scrubbing", strings.Join(leaked, ", "))
	}
	return out, nil
}

// check validates secrets and returns their dummies by Name.
func check(secrets []Secret) (map[string]string, error) {
	dummies := make(map[string]string, len(secrets))
	for _, s := range secrets {
		var problem string
		switch _, dup := dummies[s.Name]; {
		case s.Name == "":
			problem = "empty name"
		case strings.Contains(s.Name, "="):
			problem = `name contains "="` // it could never match a variable
		case dup:
			problem = "name given twice"
		case s.Real == "":
			problem = "empty real value"
		case len(s.Real) < MinLen:
			problem = fmt.Sprintf("real value is %d bytes, shorter than the minimum of %d", len(s.Real), MinLen)
		case s.Dummy == "":
			problem = "empty dummy"
		}
		if problem != "" {
			return nil, fmt.Errorf("scrub: %w %q: %s", ErrBadSecret, s.Name, problem)
		}
		dummies[s.Name] = s.Dummy
	}
	// A dummy is written into the child as is, so it must not carry any
	// real value itself (e.g. a dummy equal to its real, or one that starts
	// with another secret's real value).
	for _, s := range secrets {
		if leaked := Leaks([]string{s.Dummy}, secrets); len(leaked) > 0 {
			return nil, fmt.Errorf("scrub: %w %q: dummy contains the real value of %s", ErrBadSecret, s.Name, strings.Join(leaked, ", "))
		}
	}
	return dummies, nil
}

// Set returns env with KEY set to value: replacing an existing entry (all
// duplicates of KEY collapse into the first one's position) or appending. It
// does not modify env, and it does not scrub value: run Leaks afterwards.
func Set(env []string, key, value string) []string {
	entry := key + "=" + value
	out := make([]string, 0, len(env)+1)
	found := false
	for _, e := range env {
		if k, _, ok := strings.Cut(e, "="); ok && k == key {
			if !found {
				out = append(out, entry)
				found = true
			}
			continue
		}
		out = append(out, e)
	}
	if !found {
		out = append(out, entry)
	}
	return out
}

// Leaks reports the names of the secrets whose real value (raw or any
// encoded form Env handles) still appears anywhere in env, names and values
// alike, and also across the "=" between them. Each name is reported once,
// in the order of secrets; nil means clean. Secrets with an empty Real are
// skipped, since "" is in every string.
func Leaks(env []string, secrets []Secret) []string {
	var leaked []string
	for _, s := range secrets {
		if s.Real == "" || slices.Contains(leaked, s.Name) {
			continue
		}
		f := forms(s.Real)
		if containsAny(env, f[:]) || containsAny(env, longMiddles(s.Real)) {
			leaked = append(leaked, s.Name)
		}
	}
	return leaked
}

func containsAny(env []string, patterns []string) bool {
	for _, e := range env {
		for _, p := range patterns {
			if strings.Contains(e, p) {
				return true
			}
		}
	}
	return false
}

// numForms is the number of forms returned by forms.
const numForms = 9

// forms returns v raw and in every encoding Env handles. Index i of
// forms(real) is replaced by index i of forms(dummy).
func forms(v string) [numForms]string {
	return [numForms]string{
		v,
		url.QueryEscape(v),
		url.PathEscape(v),
		jsonInside(v, true),
		jsonInside(v, false),
		base64.StdEncoding.EncodeToString([]byte(v)),
		base64.RawStdEncoding.EncodeToString([]byte(v)),
		base64.URLEncoding.EncodeToString([]byte(v)),
		base64.RawURLEncoding.EncodeToString([]byte(v)),
	}
}

// jsonInside returns v as a JSON string without the quotes. Both the default
// json.Marshal form (<, > and & as \u003c...) and the plain form are used,
// because many JSON writers do not escape HTML.
func jsonInside(v string, escapeHTML bool) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(v); err != nil {
		return v // cannot happen for a string; the raw form is checked anyway
	}
	out := strings.TrimSuffix(b.String(), "\n")
	return out[1 : len(out)-1]
}

// pair is one replacement: an encoded real value and the same encoding of its
// dummy.
type pair struct{ real, dummy string }

// patterns holds every replacement, longest real form first.
type patterns []pair

func compile(secrets []Secret) patterns {
	var ps patterns
	seen := make(map[string]bool)
	for _, s := range secrets {
		reals, dummies := forms(s.Real), forms(s.Dummy)
		for i, r := range reals {
			if seen[r] { // also skips encodings that leave the value as is
				continue
			}
			seen[r] = true
			ps = append(ps, pair{r, dummies[i]})
		}
		// Inside a longer base64 string only the middle of the real
		// value's encoding is fixed; swap it for the dummy's middle at
		// the same alignment. Where the real middle reads the same in both
		// alphabets, only the standard one's dummy is kept: a dummy made by
		// Dummy (alphanumerics after a known prefix) encodes to the same
		// characters in both, so this keeps URL-safe text valid too.
		realMids, dummyMids := middles(s.Real), middles(s.Dummy)
		for i, r := range realMids {
			if len(r) < minMiddle || seen[r] {
				continue
			}
			seen[r] = true
			ps = append(ps, pair{r, dummyMids[i]})
		}
	}
	slices.SortStableFunc(ps, func(a, b pair) int { return len(b.real) - len(a.real) })
	return ps
}

// replace swaps every real form in s for its dummy form. It repeats the pass
// while something was replaced, because a dummy and its neighbours may form a
// new occurrence; whatever survives maxRounds is caught by Env's final Leaks.
func (ps patterns) replace(s string) string {
	for range maxRounds {
		changed := false
		for _, p := range ps {
			if strings.Contains(s, p.real) {
				s = strings.ReplaceAll(s, p.real, p.dummy)
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	return s
}
