package launcher

import (
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// keyLine is where a TOML key is defined. BurntSushi/toml keeps key
// positions to itself (they reach only its own syntax errors), and
// cloak's errors about what a key means (a widening line, a secret that
// is not loaded) must name the line too, so the file is scanned for them,
// as secrets.go does for .env files.
type keyLine struct {
	key   string // with array-of-tables indexes: secrets.X.rule[1].hosts
	plain string // without, as toml.Key.String gives it: secrets.X.rule.hosts
	line  int
}

// scanKeys lists the table headers and keys of a TOML document in order.
// It runs only on documents the parser has accepted, so it can be simple:
// it skips the insides of multi-line strings, arrays and inline tables.
func scanKeys(data []byte) []keyLine {
	var out []keyLine
	table, plainTable := "", ""
	arrays := map[string]int{}
	multi := "" // closing delimiter of a multi-line string
	depth := 0  // open brackets of a multi-line value
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		if multi != "" {
			if j := strings.Index(line, multi); j >= 0 {
				d, m := balance(line[j+len(multi):])
				depth, multi = depth+d, m
			}
			continue
		}
		if depth > 0 {
			d, m := balance(line)
			depth, multi = depth+d, m
			continue
		}
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			continue
		}
		if strings.HasPrefix(t, "[[") {
			parts, _, ok := keyParts(t[2:], "]]")
			if !ok {
				continue
			}
			p := toml.Key(parts).String()
			idx := arrays[p]
			arrays[p]++
			table, plainTable = p+"["+strconv.Itoa(idx)+"]", p
			out = append(out, keyLine{key: table, plain: p, line: n})
			continue
		}
		if t[0] == '[' {
			parts, _, ok := keyParts(t[1:], "]")
			if !ok {
				continue
			}
			p := toml.Key(parts).String()
			table, plainTable = p, p
			out = append(out, keyLine{key: p, plain: p, line: n})
			continue
		}
		parts, rest, ok := keyParts(t, "=")
		if !ok {
			continue
		}
		k := toml.Key(parts).String()
		key, plain := k, k
		if table != "" {
			key, plain = table+"."+k, plainTable+"."+k
		}
		out = append(out, keyLine{key: key, plain: plain, line: n})
		d, m := balance(rest)
		depth, multi = d, m
		if depth < 0 {
			depth = 0
		}
	}
	return out
}

// keyParts reads a dotted key (bare, "basic" or 'literal' parts) up to
// end, and returns the parts and what follows end.
func keyParts(s, end string) ([]string, string, bool) {
	var parts []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return nil, "", false
		}
		var part string
		switch s[0] {
		case '"':
			j := 1
			var b strings.Builder
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
					switch s[j] {
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					default:
						b.WriteByte(s[j])
					}
					continue
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, "", false
			}
			part, s = b.String(), s[j+1:]
		case '\'':
			j := strings.IndexByte(s[1:], '\'')
			if j < 0 {
				return nil, "", false
			}
			part, s = s[1:j+1], s[j+2:]
		default:
			j := 0
			for j < len(s) && isBare(s[j]) {
				j++
			}
			if j == 0 {
				return nil, "", false
			}
			part, s = s[:j], s[j:]
		}
		parts = append(parts, part)
		s = strings.TrimLeft(s, " \t")
		switch {
		case strings.HasPrefix(s, "."):
			s = s[1:]
		case strings.HasPrefix(s, end):
			return parts, s[len(end):], true
		default:
			return nil, "", false
		}
	}
}

func isBare(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// balance counts the brackets a value opens and leaves open on its line
// (strings and comments aside), and the delimiter of a multi-line string
// it leaves open, if any.
func balance(s string) (int, string) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '#':
			return depth, ""
		case '[', '{':
			depth++
		case ']', '}':
			depth--
		case '"', '\'':
			delim := string(c)
			if strings.HasPrefix(s[i:], strings.Repeat(delim, 3)) {
				delim = strings.Repeat(delim, 3)
			}
			j := i + len(delim)
			for j < len(s) && !strings.HasPrefix(s[j:], delim) {
				if c == '"' && s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				if len(delim) == 3 {
					return depth, delim
				}
				return depth, ""
			}
			i = j + len(delim) - 1
		}
	}
	return depth, ""
}
