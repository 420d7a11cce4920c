package proxy

import (
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
)

// authorized checks the session's proxy credentials in constant time, so
// that another process on the machine cannot use the proxy (and its
// injection) without them.
func (p *Proxy) authorized(req *http.Request) bool {
	user, pass, ok := parseBasic(req.Header.Get("Proxy-Authorization"))
	return ok &&
		subtle.ConstantTimeCompare([]byte(user), []byte(p.user)) == 1 &&
		subtle.ConstantTimeCompare([]byte(pass), []byte(p.pass)) == 1
}

// parseBasic decodes an "Authorization: Basic ..." value (RFC 7617): the
// scheme is case-insensitive, the credentials are base64 of "user:pass".
func parseBasic(v string) (user, pass string, ok bool) {
	scheme, cred, found := strings.Cut(strings.TrimSpace(v), " ")
	if !found || !strings.EqualFold(scheme, "basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(raw), ":")
}
