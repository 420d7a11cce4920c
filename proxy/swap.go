package proxy

import (
	"net/http"
	"strings"
)

// swapOut is what a swap did: the secrets it injected, or the first secret
// whose dummy was found where it may not go.
type swapOut struct {
	injected []string
	tripped  *Secret
	where    string
}

func (o *swapOut) inject(name string) {
	for _, n := range o.injected {
		if n == name {
			return
		}
	}
	o.injected = append(o.injected, name)
}

// allows reports whether the secret's real value may be placed at place in
// a request with this method, host, port and path.
func (s *Secret) allows(method, host string, port int, path, place string) bool {
	for _, r := range s.Rules {
		if r.allowsRequest(method, host, port, path) && r.allowsPlace(place) {
			return true
		}
	}
	return false
}

// swapRequest replaces dummies in an intercepted request's headers (Basic
// credentials included) and URL with real values where the rules allow,
// and trips on any dummy left elsewhere in the headers or the URL.
func (p *Proxy) swapRequest(req *http.Request, host string, port int) swapOut {
	var out swapOut
	set := p.secrets()
	path := req.URL.EscapedPath()
	for name, vals := range req.Header {
		place := "header:" + strings.ToLower(name)
		for i, v := range vals {
			if place == "header:authorization" {
				nv, bad := swapBasic(set, v, req.Method, host, port, path, &out)
				if bad != nil {
					out.tripped, out.where = bad, "in the Basic credentials of header "+name
					return out
				}
				v = nv
			}
			nv, bad := swapString(set, v, req.Method, host, port, path, place, &out)
			if bad != nil {
				out.tripped, out.where = bad, "in header "+name
				return out
			}
			vals[i] = nv
		}
	}
	swapURL(set, req, host, port, path, &out)
	if bad := set.dummyIn(req.URL.RequestURI()); bad != nil {
		out.tripped, out.where = bad, "in the URL"
	}
	return out
}

// swapString swaps every dummy in v that may go to this place, or returns
// the secret whose dummy may not.
func swapString(set *secretSet, v, method, host string, port int, path, place string, out *swapOut) (string, *Secret) {
	for i := range set.list {
		s := &set.list[i]
		if !strings.Contains(v, s.Dummy) {
			continue
		}
		if !s.allows(method, host, port, path, place) {
			return v, s
		}
		v = strings.ReplaceAll(v, s.Dummy, s.Real)
		out.inject(s.Name)
	}
	return v, nil
}

// findDummies trips on any dummy in a request's headers (Basic credentials
// included) or URL; it is used where no swap may happen at all (plain HTTP).
func (p *Proxy) findDummies(req *http.Request) swapOut {
	var out swapOut
	set := p.secrets()
	for name, vals := range req.Header {
		for _, v := range vals {
			bad := set.dummyIn(v)
			if dec, ok := decodeBasic(v); ok && bad == nil {
				bad = set.dummyIn(dec)
			}
			if bad != nil {
				out.tripped, out.where = bad, "in header "+name
				return out
			}
		}
	}
	if bad := set.dummyIn(req.URL.RequestURI()); bad != nil {
		out.tripped, out.where = bad, "in the URL"
	}
	return out
}

// redact turns any real value in s (in any encoded form) back into its
// dummy. It guards text cloak writes that may echo upstream input, such as
// error messages.
func (p *Proxy) redact(s string) string {
	return p.secrets().redact.replaceString(s)
}
