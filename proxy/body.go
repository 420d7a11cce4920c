package proxy

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// bodyPeek is how much of a request body to a host no secret is bound to
// cloak reads before forwarding it, so that a dummy in it is refused with
// a 403 before any byte leaves.
const bodyPeek = 64 << 10

// errBodyTripwire cuts a request body before a dummy that may not go to
// its host.
var errBodyTripwire = errors.New("cloak: request body cut before a dummy that may not go to this host")

// prepareBody decides what happens to a request body as it streams
// upstream. The policy:
//
//   - To a host some secret is bound to, inside a tunnel: each dummy whose
//     rules allow the place "body" for this request becomes its real value.
//     Other dummies go as they are and are no tripwire: the body of a model
//     API request is the model's context, where the agent's own output
//     (a printed environment, say) legitimately carries dummies.
//   - To a host no secret is bound to (every host with InspectAll, and
//     plain HTTP): a dummy there is a tripwire. The first bodyPeek bytes
//     are read before forwarding, and a dummy in them refuses the request
//     (403) with nothing sent. Past that window the body streams, and the
//     stream is cut just before a dummy: the upstream gets a truncated
//     request without the dummy, the child a 403, and the audit log an
//     alert.
//
// A compressed body (gzip or deflate) is decoded for this and encoded
// again; one in any other coding is refused (415) when cloak would have
// to read it, so a dummy never passes hidden by an encoding. Bodies nobody
// needs to read pass untouched. path is the request path as the child
// sent it.
func (p *Proxy) prepareBody(req *http.Request, rec *record, inTunnel bool, host string, port int, path string) *blocked {
	if req.Body == nil || req.Body == http.NoBody || req.ContentLength == 0 {
		return nil
	}
	set := p.secrets()
	detect := !p.policy.bodyKeepsDummies(host) && !set.dummies.empty()
	var pairs []pair
	if inTunnel && !detect {
		enc := bodyForm(req.Header.Get("Content-Type"))
		for i := range set.list {
			if s := &set.list[i]; s.allows(req.Method, host, port, path, "body") {
				pairs = append(pairs, swapPairs(s, enc, i)...)
			}
		}
	}
	if len(pairs) == 0 && !detect {
		return nil
	}
	codings, err := contentCodings(req.Header)
	if err != nil {
		return rec.deny(http.StatusUnsupportedMediaType, decisionBadRequest,
			"the request body is compressed with an encoding cloak cannot read ("+err.Error()+"); cloak must see the body to swap or check secrets: send it uncompressed, gzip or deflate")
	}
	body := decodeCodings(codings, req.Body)
	sameLen := true
	if detect {
		var b *blocked
		if body, b = p.peekBody(body, set, rec); b != nil {
			return b
		}
		body = set.dummies.reader(body, func(id int) error {
			p.tripBody(rec, set.list[id].Name)
			return errBodyTripwire
		})
	} else {
		rs, err := newReplaceSet(pairs)
		if err != nil {
			return rec.deny(http.StatusInternalServerError, decisionBadRequest, "preparing the body swap: "+err.Error())
		}
		sameLen = rs.sameLen
		body = rs.reader(body, func(id int) error {
			rec.addInjected(set.list[id].Name)
			return nil
		})
	}
	body = encodeCodings(codings, body)
	req.Body = replaceReadCloser{Reader: body, c: req.Body}
	if len(codings) > 0 || !sameLen {
		// The length changes: send the body chunked (RFC 9112 7.1).
		req.ContentLength = -1
		req.Header.Del("Content-Length")
	}
	return nil
}

// peekBody reads up to bodyPeek bytes and refuses the request if they hold
// a dummy; it returns the body to forward, peeked bytes included.
func (p *Proxy) peekBody(body io.Reader, set *secretSet, rec *record) (io.Reader, *blocked) {
	buf := make([]byte, bodyPeek)
	n, err := io.ReadFull(body, buf)
	buf = buf[:n]
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		body = bytes.NewReader(buf)
	case err != nil:
		return nil, rec.deny(http.StatusBadRequest, decisionBadRequest, "reading the request body: "+err.Error())
	default:
		body = io.MultiReader(bytes.NewReader(buf), body)
	}
	if s := set.dummyIn(string(buf)); s != nil {
		return nil, rec.deny(http.StatusForbidden, decisionTripwire,
			"the dummy for "+s.Name+" in the request body may not go to "+rec.host+rec.path)
	}
	return body, nil
}

// bodyForm is how a real value is written where its dummy was, by the
// body's media type: a form value or a JSON string escapes characters
// that a raw body takes as they are.
func bodyForm(contentType string) form {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch {
	case mt == "application/x-www-form-urlencoded":
		return url.QueryEscape
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return jsonEscape
	}
	return func(s string) string { return s }
}
