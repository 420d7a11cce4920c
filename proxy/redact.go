package proxy

import (
	"net/http"
	"strings"
)

// Redaction of responses: every response cloak parses (inside intercepted
// tunnels, and plain HTTP) has each real value, in each encoded form,
// turned back into the dummy in the same form, in the status line, the
// headers and the body, whether or not a secret was injected into the
// request. The body streams through the replacer: nothing waits but a
// possible start of a real value, at most the longest one minus a byte.
//
// Compression: cloak asks upstream for identity encoding (Accept-Encoding:
// identity on every request it forwards while it has secrets), so it reads
// the plaintext without decoding and re-encoding every response. An
// upstream that compresses anyway with gzip or deflate is decoded and the
// child gets the plaintext (Content-Encoding removed, length unknown, so
// streamed); any other coding cannot be read and is refused with a 502.

// askIdentity makes the upstream answer uncompressed, so redaction sees
// the plaintext. The child's own Accept-Encoding is replaced: it gets an
// uncompressed answer, which every client accepts (RFC 9110 12.5.3).
func (p *Proxy) askIdentity(req *http.Request) {
	if !p.secrets().redact.empty() || len(p.cfg.Minted) > 0 {
		req.Header.Set("Accept-Encoding", "identity")
	}
}

// cloakResponse makes a response fit for the child: it decodes an
// unwanted compression, mints secrets from a token response, and redacts
// real values. It returns a refusal to send instead.
func (p *Proxy) cloakResponse(res *http.Response, rec *record) *blocked {
	if p.secrets().redact.empty() && len(p.cfg.Minted) == 0 {
		return nil
	}
	body := hasBody(res)
	if body {
		codings, err := contentCodings(res.Header)
		if err != nil {
			_ = res.Body.Close()
			return refuseResponse(rec, "upstream "+rec.host+" compressed its answer with an encoding cloak cannot read ("+err.Error()+") although cloak asked for none; cloak must read a body to keep real secrets from the child")
		}
		if len(codings) > 0 {
			res.Body = replaceReadCloser{Reader: decodeCodings(codings, res.Body), c: res.Body}
			res.Header.Del("Content-Encoding")
			res.Header.Del("Content-Length")
			res.ContentLength = -1
		}
		if rec.scheme == "https" {
			if host, port, err := SplitHostPort(rec.host, 443); err == nil {
				names, b := p.mint(res, rec, host, port)
				if b != nil {
					return b
				}
				rec.minted = names
			}
		}
	}
	// Fetched after minting: the set now knows the minted values.
	red := p.secrets().redact
	res.Status = red.replaceString(res.Status)
	for _, vals := range res.Header {
		for i, v := range vals {
			vals[i] = red.replaceString(v)
		}
	}
	if body {
		// The set keeps lengths (see newSecretSet), so Content-Length
		// stays true.
		res.Body = replaceReadCloser{Reader: red.reader(res.Body, nil), c: res.Body}
	}
	return nil
}

// hasBody reports whether a response carries a body (RFC 9112 6.3).
func hasBody(res *http.Response) bool {
	if res.Body == nil || res.Body == http.NoBody {
		return false
	}
	return !strings.EqualFold(res.Request.Method, http.MethodHead) && res.StatusCode >= 200 &&
		res.StatusCode != http.StatusNoContent && res.StatusCode != http.StatusNotModified
}
