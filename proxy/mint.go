package proxy

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// MintRule marks a field of a response as a credential minted during the
// session, such as the access_token an OAuth token endpoint returns. cloak
// keeps the real value, hands the child a dummy of the same length in its
// place, and from then on treats the pair like any configured secret: the
// dummy is swapped for the real value where Rules allow, and the real value
// is redacted from every response.
type MintRule struct {
	Host  HostPattern // the token endpoint's host
	Path  string      // "/exact" or "/prefix*"; empty: any path
	Field string      // a top-level field of a JSON object or form-encoded body
	Name  string      // the minted secret's name in the audit log
	// Rules say where the minted value may go. Empty: nowhere, so the
	// child holds a dummy that is never swapped.
	Rules []Rule
}

func (m MintRule) valid() error {
	if m.Host.Host == "" || m.Field == "" || m.Name == "" {
		return fmt.Errorf("minting rule %q: host, field and name are all required", m.Name)
	}
	return nil
}

func (m MintRule) matches(host string, port int, path string) bool {
	return m.Host.Match(host, port) && (m.Path == "" || matchPath(m.Path, path))
}

const (
	// mintMax bounds the response cloak holds to find a minted value:
	// token responses are a few hundred bytes.
	mintMax = 64 << 10
	// maxMinted bounds how many minted secrets a session keeps; beyond it
	// the oldest minted one is forgotten (and no longer swapped or
	// redacted), so a child cannot grow the proxy without bound.
	maxMinted = 256
	// minMinted is the shortest value cloak will mint a dummy for: a
	// shorter one would be guessable and would match innocent text.
	minMinted = 8
)

var errMintTooLarge = errors.New("token response larger than 64 KiB")

// mint looks for minted credentials in a response to an intercepted
// request. It holds the (decoded) body of a matching 2xx response, up to
// mintMax, mints a secret for each field found, and leaves res.Body as
// the held bytes for the caller's redaction, which now knows the new
// secrets. It returns the secret names minted, or a refusal.
func (p *Proxy) mint(res *http.Response, rec *record, host string, port int) ([]string, *blocked) {
	if len(p.cfg.Minted) == 0 || res.StatusCode < 200 || res.StatusCode > 299 {
		return nil, nil
	}
	path := res.Request.URL.EscapedPath()
	var rules []MintRule
	for _, m := range p.cfg.Minted {
		if m.matches(host, port, path) {
			rules = append(rules, m)
		}
	}
	if len(rules) == 0 {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, mintMax+1))
	if err == nil && len(body) > mintMax {
		err = errMintTooLarge
	}
	if err != nil {
		_ = res.Body.Close()
		return nil, refuseResponse(rec, "reading a token response from "+rec.host+": "+p.redact(err.Error()))
	}
	res.Body = replaceReadCloser{Reader: bytes.NewReader(body), c: res.Body}
	fields := mintFields(res.Header.Get("Content-Type"), body)

	type found struct{ name, field, real string }
	var got []found
	for _, m := range rules {
		real := fields[m.Field]
		if real == "" {
			continue
		}
		if len(real) < minMinted {
			return nil, refuseResponse(rec, fmt.Sprintf("field %s of the token response is %d bytes, too short to replace safely", m.Field, len(real)))
		}
		if err := p.addMinted(m, real); err != nil {
			return nil, refuseResponse(rec, "minting a dummy for "+m.Name+": "+err.Error())
		}
		got = append(got, found{m.Name, m.Field, real})
	}
	if len(got) == 0 {
		return nil, nil
	}
	// Redact now and check: a minted value the child would still see (in
	// an escape the redaction does not know) refuses the response.
	red := []byte(p.secrets().redact.replaceString(string(body)))
	after := mintFields(res.Header.Get("Content-Type"), red)
	var names []string
	for _, f := range got {
		if bytes.Contains(red, []byte(f.real)) || after[f.field] == f.real {
			return nil, refuseResponse(rec, "the token response holds "+f.name+" in a form cloak cannot replace")
		}
		names = append(names, f.name)
	}
	res.Body = replaceReadCloser{Reader: bytes.NewReader(red), c: res.Body}
	res.ContentLength = int64(len(red))
	res.Header.Set("Content-Length", strconv.Itoa(len(red)))
	res.TransferEncoding = nil
	return names, nil
}

// refuseResponse replaces an upstream answer cloak cannot make safe.
func refuseResponse(rec *record, reason string) *blocked {
	return rec.deny(http.StatusBadGateway, decisionUpstreamError, reason)
}

// mintFields reads the top-level string fields of a JSON object or a
// form-encoded body (GitHub's token endpoint answers in either).
func mintFields(contentType string, body []byte) map[string]string {
	out := map[string]string{}
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/x-www-form-urlencoded" {
		if q, err := url.ParseQuery(string(body)); err == nil {
			for k := range q {
				out[k] = q.Get(k)
			}
		}
		return out
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return out
	}
	for k, raw := range obj {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			out[k] = s
		}
	}
	return out
}

// addMinted adds a secret for real, unless one exists already (a token
// endpoint may return the same token twice).
func (p *Proxy) addMinted(m MintRule, real string) error {
	p.mintMu.Lock()
	defer p.mintMu.Unlock()
	cur := p.secrets()
	for _, s := range cur.list {
		if s.Real == real {
			return nil
		}
	}
	gen := p.cfg.MintDummy
	if gen == nil {
		gen = mintDummy
	}
	dummy, err := gen(real)
	if err != nil {
		return err
	}
	if len(dummy) != len(real) {
		return fmt.Errorf("the dummy is %d bytes, the value %d", len(dummy), len(real))
	}
	list := append([]Secret(nil), cur.list...)
	if configured := len(p.cfg.Secrets); len(list)-configured >= maxMinted {
		list = append(list[:configured], list[configured+1:]...)
	}
	list = append(list, Secret{Name: m.Name, Dummy: dummy, Real: real, Rules: m.Rules})
	set, err := newSecretSet(list)
	if err != nil {
		return err
	}
	p.set.Store(set)
	return nil
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// mintDummy makes a dummy for a minted value: same length, a short prefix
// up to '-', '_' or '.' kept when at least 16 bytes follow it (gho_,
// ya29.), the rest random letters and digits from crypto/rand.
func mintDummy(real string) (string, error) {
	prefix := ""
	if i := strings.LastIndexAny(real[:min(len(real), 16)], "-_."); i >= 0 && len(real)-(i+1) >= 16 {
		prefix = real[:i+1]
	}
	for range 8 {
		b := make([]byte, 0, len(real)-len(prefix))
		var r [64]byte
		for len(b) < cap(b) {
			if _, err := rand.Read(r[:]); err != nil {
				return "", fmt.Errorf("reading random bytes: %w", err)
			}
			for _, c := range r {
				// 248 = 4*62: reject the top bytes to keep the draw uniform.
				if c < 248 && len(b) < cap(b) {
					b = append(b, alnum[c%62])
				}
			}
		}
		d := prefix + string(b)
		if !strings.Contains(d, real) && !strings.Contains(real, d) {
			return d, nil
		}
	}
	return "", errors.New("could not make a dummy different from the value")
}
