package proxy

import (
	"encoding/base64"
	"strings"
)

// decodeBasic returns the "user:password" inside an HTTP Basic
// Authorization value (RFC 7617), or false if v is not one.
func decodeBasic(v string) (string, bool) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "basic") {
		return "", false
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return "", false
	}
	return string(b), true
}

// swapBasic swaps a dummy used as the user name or password of Basic
// credentials, where the rules allow the place "basic-auth", and encodes
// the credentials again. This is how git over HTTPS sends a GitHub token
// (user x-access-token, the token as password). It returns the secret
// whose dummy may not go there.
func swapBasic(set *secretSet, v, method, host string, port int, path string, out *swapOut) (string, *Secret) {
	dec, ok := decodeBasic(v)
	if !ok {
		return v, nil
	}
	swapped := dec
	for i := range set.list {
		s := &set.list[i]
		if !strings.Contains(swapped, s.Dummy) {
			continue
		}
		if !s.allows(method, host, port, path, "basic-auth") {
			return v, s
		}
		swapped = strings.ReplaceAll(swapped, s.Dummy, s.Real)
		out.inject(s.Name)
	}
	if swapped == dec {
		return v, nil
	}
	scheme, _, _ := strings.Cut(strings.TrimSpace(v), " ")
	return scheme + " " + base64.StdEncoding.EncodeToString([]byte(swapped)), nil
}
