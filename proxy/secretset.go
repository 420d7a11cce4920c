package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// secretSet is an immutable snapshot of every secret the proxy knows: the
// configured ones and those minted during the session. Requests take one
// snapshot and use it throughout, so a secret minted meanwhile cannot
// change a request half way.
type secretSet struct {
	list []Secret
	// redact turns each real value, and each encoded form of it, into the
	// dummy in the same form, at the same length (see sameLength). For
	// responses and for cloak's own text.
	redact *replaceSet
	// dummies finds any form of any dummy; a pair's id is the secret's
	// index in list.
	dummies *replaceSet
}

// form is one way a client or server may write a value: as it is, or
// encoded for a URL or a JSON string.
type form func(string) string

// forms are the encodings cloak looks through. Dummies are letters, digits
// and a known prefix with '-', '_' or '.', which every one of these leaves
// as they are; real values may hold '/', '+' or '=' (base64 secrets) and
// then differ.
var forms = []form{
	func(s string) string { return s },
	url.QueryEscape,
	url.PathEscape,
	jsonEscape,
	jsonEscapeHTML,
	func(s string) string { return strings.ReplaceAll(jsonEscape(s), "/", `\/`) },
}

// jsonEscape is s inside a JSON string, as most encoders write it.
func jsonEscape(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(b.String(), "\n"), `"`), `"`)
}

// jsonEscapeHTML is s inside a JSON string as Go's json.Marshal writes it.
func jsonEscapeHTML(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func newSecretSet(list []Secret) (*secretSet, error) {
	var red, dum []pair
	for i, s := range list {
		if s.Dummy == "" || s.Real == "" {
			return nil, fmt.Errorf("secret %s: empty dummy or real value", s.Name)
		}
		if strings.Contains(s.Real, s.Dummy) || strings.Contains(s.Dummy, s.Real) {
			return nil, fmt.Errorf("secret %s: the dummy and the real value contain each other", s.Name)
		}
		for _, f := range forms {
			red = append(red, pair{from: []byte(f(s.Real)), to: []byte(sameLength(f(s.Dummy), len(f(s.Real)))), id: i})
			d := []byte(f(s.Dummy))
			dum = append(dum, pair{from: d, to: d, id: i})
		}
	}
	r, err := newReplaceSet(red)
	if err != nil {
		return nil, err
	}
	r.redactTail = true
	d, err := newReplaceSet(dum)
	if err != nil {
		return nil, err
	}
	return &secretSet{list: list, redact: r, dummies: d}, nil
}

// dummyIn returns the secret with a dummy (in any form) in v, or nil.
func (s *secretSet) dummyIn(v string) *Secret {
	if id := s.dummies.contains([]byte(v)); id >= 0 {
		return &s.list[id]
	}
	return nil
}

// sameLength pads v with '*' or cuts it to n bytes. An encoded real value
// (a '/' written %2F) is longer than the plain dummy; its redaction keeps
// the length so a response's Content-Length stays true, and the child
// sees the dummy and some stars, never the real value.
func sameLength(v string, n int) string {
	if len(v) >= n {
		return v[:n]
	}
	return v + strings.Repeat("*", n-len(v))
}

// swapPairs are the pairs that put sec's real value where its dummy is, in
// a text whose encoding is enc (raw, form or JSON), id being id.
func swapPairs(sec *Secret, enc form, id int) []pair {
	out := []pair{{from: []byte(sec.Dummy), to: []byte(enc(sec.Real)), id: id}}
	for _, f := range forms[1:] {
		if d := f(sec.Dummy); d != sec.Dummy {
			out = append(out, pair{from: []byte(d), to: []byte(f(sec.Real)), id: id})
		}
	}
	return out
}

// secrets is the proxy's current snapshot.
func (p *Proxy) secrets() *secretSet { return p.set.Load() }
