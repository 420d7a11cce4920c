package proxy

import (
	"fmt"
	"strings"
)

// Secret is what the proxy knows of one credential: the dummy the child
// holds, the real value to put in its place, and the rules that say where the
// real value may go. A secret with no rules is never swapped.
type Secret struct {
	Name  string
	Dummy string
	Real  string
	Rules []Rule
}

// String never shows the real value, so a Secret cannot leak through a
// format verb or a logger by accident.
func (s Secret) String() string   { return s.Name + "=<redacted>" }
func (s Secret) GoString() string { return s.String() }

// Rule is one place a real value may go: a request that matches every
// non-empty field.
type Rule struct {
	Hosts   []HostPattern
	Methods []string // upper case; empty: any method
	Paths   []string // "/exact" or "/prefix*"; empty: any path
	// Places lists where in the request the real value may be placed:
	// "header" (any header), "header:NAME" (NAME in lower case), "query",
	// "query:NAME", "path", "body", "basic-auth". Empty: anywhere.
	Places []string
}

// allowsRequest reports whether the rule admits a request, place aside.
func (r Rule) allowsRequest(method, host string, port int, path string) bool {
	if !r.allowsHost(host, port) {
		return false
	}
	if len(r.Methods) > 0 && !contains(r.Methods, method) {
		return false
	}
	if len(r.Paths) == 0 {
		return true
	}
	for _, p := range r.Paths {
		if matchPath(p, path) {
			return true
		}
	}
	return false
}

func (r Rule) allowsHost(host string, port int) bool {
	for _, h := range r.Hosts {
		if h.Match(host, port) {
			return true
		}
	}
	return false
}

// allowsPlace reports whether place ("header:x-api-key", "query:key",
// "body", ...) is one the rule admits.
func (r Rule) allowsPlace(place string) bool {
	if len(r.Places) == 0 {
		return true
	}
	kind, _, _ := strings.Cut(place, ":")
	for _, p := range r.Places {
		if p == place || p == kind {
			return true
		}
	}
	return false
}

// matchPath matches "/v1/messages*" as a prefix and anything else exactly.
// The path is compared as sent (escaped form), so an encoded "/" cannot
// smuggle a different path past a prefix, and a path with dot segments
// matches no pattern: "/v1/messages/../../admin" starts with the prefix,
// but the upstream would serve /admin.
func matchPath(pattern, path string) bool {
	if hasDotSegment(path) {
		return false
	}
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(path, p)
	}
	return pattern == path
}

// dotSegment finds "." and ".." segments (RFC 3986 5.2.4), also when
// percent-encoded or split by a backslash or an encoded slash, which some
// servers read as a separator.
var dotSegment = strings.NewReplacer("%2e", ".", "%2E", ".", "%2f", "/", "%2F", "/", "%5c", "/", "%5C", "/", "\\", "/")

func hasDotSegment(path string) bool {
	for _, seg := range strings.Split(dotSegment.Replace(path), "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ValidPlace reports whether s is a placement Rule.Places understands.
func ValidPlace(s string) error {
	kind, name, hasName := strings.Cut(s, ":")
	switch kind {
	case "header", "query":
		if hasName && name == "" {
			return fmt.Errorf("place %q: empty name after %q", s, kind+":")
		}
		return nil
	case "path", "body", "basic-auth":
		if hasName {
			return fmt.Errorf("place %q: %q takes no name", s, kind)
		}
		return nil
	}
	return fmt.Errorf("unknown place %q (want header, header:NAME, query, query:NAME, path, body or basic-auth)", s)
}
