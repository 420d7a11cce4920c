package proxy

import (
	"net/http"
	"net/url"
	"strings"
)

// swapURL swaps dummies in the path and in query values where the rules
// allow the place "path" or "query:NAME", writing the real value encoded
// for where it lands (a '/' in a path segment becomes %2F, a '+' in a
// query value %2B). The query is edited parameter by parameter in its raw
// form, so the rest of the URL reaches upstream byte for byte as sent.
// Dummies that may not go there are left for the caller's tripwire.
func swapURL(set *secretSet, req *http.Request, host string, port int, path string, out *swapOut) {
	u := req.URL
	ep := u.EscapedPath()
	if np := swapIn(set, ep, url.PathEscape, req.Method, host, port, path, "path", out); np != ep {
		if dec, err := url.PathUnescape(np); err == nil {
			u.Path, u.RawPath = dec, np
		}
	}
	if u.RawQuery == "" || set.dummyIn(u.RawQuery) == nil {
		return
	}
	parts := strings.Split(u.RawQuery, "&")
	for i, part := range parts {
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		key, err := url.QueryUnescape(name)
		if err != nil {
			continue
		}
		parts[i] = name + "=" + swapIn(set, val, url.QueryEscape, req.Method, host, port, path, "query:"+key, out)
	}
	u.RawQuery = strings.Join(parts, "&")
}

// swapIn replaces every form of each allowed secret's dummy in the encoded
// text v with the real value in the same encoding (enc for the raw dummy).
func swapIn(set *secretSet, v string, enc form, method, host string, port int, path, place string, out *swapOut) string {
	for i := range set.list {
		s := &set.list[i]
		if set.dummyIn(v) == nil {
			return v
		}
		if !s.allows(method, host, port, path, place) {
			continue
		}
		before := v
		for _, pr := range swapPairs(s, enc, i) {
			v = strings.ReplaceAll(v, string(pr.from), string(pr.to))
		}
		if v != before {
			out.inject(s.Name)
		}
	}
	return v
}
