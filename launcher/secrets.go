package launcher

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
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
			line := lineOf(data, name)
			src := fmt.Sprintf("%s line %d", f.path, line)
			switch {
			case !validName.MatchString(name):
				return nil, fmt.Errorf("%s: %q is not a variable name (letters, digits and _, not starting with a digit)", src, name)
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

// validName is what a shell accepts as a variable name; godotenv also
// takes dots and spaces, which no child could read back.
var validName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// lineOf finds the last line that assigns name (godotenv keeps the last).
func lineOf(data []byte, name string) int {
	re := regexp.MustCompile(`^\s*(export\s+)?` + strings.ReplaceAll(regexp.QuoteMeta(name), " ", `\s+`) + `\s*[=:]`)
	last := 0
	for i, l := range strings.Split(string(data), "\n") {
		if re.MatchString(l) {
			last = i + 1
		}
	}
	return last
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
