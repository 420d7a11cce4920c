package launcher

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/joho/godotenv"

	"github.com/cloak-dev/cloak/scrub"
)

// secret is a loaded credential before it has a dummy: where it came from
// is kept for messages.
type secret struct {
	name   string
	real   string
	source string // "FILE line N" or "environment"
}

func (s secret) String() string { return s.name + "=<redacted>" }

// source is one place secrets come from.
type source struct {
	path     string
	explicit bool // named by the user: missing is an error
}

// loadFiles reads the secrets files in order; later files win. Every entry
// is a secret, except values too short to be one (see below).
func loadFiles(files []source, warn func(string)) ([]secret, error) {
	byName := map[string]secret{}
	for _, f := range files {
		data, err := os.ReadFile(f.path)
		if errors.Is(err, fs.ErrNotExist) && !f.explicit {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading secrets file: %w", pathErr(err))
		}
		vars, err := parseEnv(f.path, data)
		if err != nil {
			return nil, err
		}
		for name, val := range vars {
			src := f.path
			if line := lineOf(data, name); line > 0 {
				src = fmt.Sprintf("%s line %d", f.path, line)
			}
			switch {
			case !validName(name):
				// The name is not shown: godotenv takes any byte that
				// reads as a letter, so it may be anything.
				return nil, fmt.Errorf("%s: not a variable name (letters, digits and _, not starting with a digit)", src)
			case val == "":
				return nil, fmt.Errorf("%s: %s is empty (give it a value or remove the line)", src, name)
			case len(val) < scrub.MinLen:
				// Too short to tell apart from ordinary text, so it cannot
				// be swapped or scrubbed: it is configuration, not a secret.
				warn(fmt.Sprintf("%s: %s is shorter than %d characters: passed to the child as is, not as a secret", src, name, scrub.MinLen))
				byName[name] = secret{name: name, real: val, source: src + " (plain)"}
			default:
				byName[name] = secret{name: name, real: val, source: src}
			}
		}
	}
	return sorted(byName), nil
}

// parseEnv parses a secrets file with godotenv. godotenv's own error text
// quotes the rest of the file, secret values included, so it is never shown:
// the error names the file and the line.
func parseEnv(path string, data []byte) (map[string]string, error) {
	vars, err := godotenv.UnmarshalBytes(data)
	if err == nil {
		return vars, nil
	}
	return nil, fmt.Errorf("%s line %d: malformed line (want NAME=value; quote values with spaces or #)", path, badLine(data))
}

// badLine finds the line godotenv fails on: the one after the longest
// prefix of the file that still parses.
func badLine(data []byte) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	for n := len(lines) - 1; n > 0; n-- {
		if _, err := godotenv.UnmarshalBytes(bytes.Join(lines[:n], nil)); err == nil {
			return n + 1
		}
	}
	return 1
}

// lineOf finds the last line that assigns name (godotenv keeps the last),
// for messages. It reads lines the way godotenv does: a lone CR ends a line
// too, then optional "export", the name, and "=" or ":". godotenv also
// starts a statement right after a closing quote, mid-line; failing a match
// at a line's start, the last line with the name and "=" or ":" anywhere
// is taken. 0 means not found.
func lineOf(data []byte, name string) int {
	if name == "" {
		return 0
	}
	text := strings.ReplaceAll(strings.ReplaceAll(string(data), "\r\n", "\n"), "\r", "\n")
	lines := strings.Split(text, "\n")
	assigns := func(l string) bool {
		rest := strings.TrimLeft(l, " \t")
		return strings.HasPrefix(rest, "=") || strings.HasPrefix(rest, ":")
	}
	last, anywhere := 0, 0
	for i, l := range lines {
		for j := strings.Index(l, name); j >= 0 && anywhere != i+1; {
			if assigns(l[j+len(name):]) {
				anywhere = i + 1
				break
			}
			k := strings.Index(l[j+1:], name)
			if k < 0 {
				break
			}
			j += 1 + k
		}
		l = strings.TrimLeft(l, " \t\v\f")
		if rest, ok := strings.CutPrefix(l, "export"); ok && rest != strings.TrimLeft(rest, " \t") {
			l = strings.TrimLeft(rest, " \t")
		}
		if rest, ok := strings.CutPrefix(l, name); ok && assigns(rest) {
			last = i + 1
		}
	}
	if last == 0 {
		return anywhere
	}
	return last
}

// validName is what a shell accepts as a variable name; godotenv also
// takes dots, spaces and any byte that reads as a letter, which no child
// could read back.
func validName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case i > 0 && c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return name != ""
}

// fromEnv takes secrets from cloak's own environment, for CI jobs where
// secrets arrive as variables.
func fromEnv(names []string, lookup func(string) (string, bool)) ([]secret, error) {
	var out []secret
	for _, n := range names {
		v, ok := lookup(n)
		if !ok {
			return nil, fmt.Errorf("--from-env %s: no such variable in cloak's environment", n)
		}
		if v == "" {
			return nil, fmt.Errorf("--from-env %s: the variable is empty", n)
		}
		if len(v) < scrub.MinLen {
			return nil, fmt.Errorf("--from-env %s: value is shorter than %d characters, too short to protect", n, scrub.MinLen)
		}
		out = append(out, secret{name: n, real: v, source: "environment"})
	}
	return out, nil
}

// merge joins secret lists; a later list wins for the same name.
func merge(lists ...[]secret) []secret {
	byName := map[string]secret{}
	for _, l := range lists {
		for _, s := range l {
			byName[s.name] = s
		}
	}
	return sorted(byName)
}

func sorted(m map[string]secret) []secret {
	out := make([]secret, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// isPlain reports whether a loaded value is too short to be a secret.
func (s secret) isPlain() bool { return len(s.real) < scrub.MinLen }

// pathErr keeps the path and reason of an fs error.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}
