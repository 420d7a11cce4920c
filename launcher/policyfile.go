package launcher

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// A policy file is TOML: people write it by hand, it has comments, and its
// tables read the way the policy is thought of (one per secret). The parser
// is github.com/BurntSushi/toml: well kept, strict about syntax, and it
// reports every key it saw, which lets cloak refuse keys it does not know.

// policyDoc is a policy file as written.
type policyDoc struct {
	Egress  egressDoc            `toml:"egress"`
	Secrets map[string]secretDoc `toml:"secrets"`
}

type egressDoc struct {
	Default string   `toml:"default"` // "allow" or "deny"
	Allow   []string `toml:"allow"`
	Deny    []string `toml:"deny"`
	Inspect string   `toml:"inspect"` // "bound" or "all"
}

type secretDoc struct {
	Preset  string    `toml:"preset"`
	Hosts   []string  `toml:"hosts"`
	Methods []string  `toml:"methods"`
	Paths   []string  `toml:"paths"`
	Places  []string  `toml:"places"`
	Rules   []ruleDoc `toml:"rule"`
}

type ruleDoc struct {
	Hosts   []string `toml:"hosts"`
	Methods []string `toml:"methods"`
	Paths   []string `toml:"paths"`
	Places  []string `toml:"places"`
}

// Keys a policy file may hold, by the table they sit in.
var (
	topKeys    = []string{"egress", "secrets"}
	egressKeys = []string{"default", "allow", "deny", "inspect"}
	secretKeys = []string{"preset", "hosts", "methods", "paths", "places", "rule"}
	ruleKeys   = []string{"hosts", "methods", "paths", "places"}
)

// policyFile is a parsed policy file that can say on which line each of
// its keys sits, for errors.
type policyFile struct {
	path  string
	doc   policyDoc
	md    toml.MetaData
	lines []keyLine
}

// readPolicyFile reads and parses a policy file and refuses keys it does
// not know; what the values mean is checked by the caller.
func readPolicyFile(path string) (*policyFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading policy file: %w", pathErr(err))
	}
	return parsePolicy(path, data)
}

func parsePolicy(path string, data []byte) (*policyFile, error) {
	var doc policyDoc
	md, err := toml.Decode(string(data), &doc)
	if err != nil {
		return nil, tomlError(path, err)
	}
	f := &policyFile{path: path, doc: doc, md: md, lines: scanKeys(data)}
	if err := f.checkKeys(); err != nil {
		return nil, err
	}
	return f, nil
}

// typeError is how BurntSushi/toml words a value of the wrong type.
var typeError = regexp.MustCompile(`^toml: line (\d+) \(last key "(.*)"\): (?:incompatible types: )?(.*)$`)

// tomlError rewords a parser error as "FILE line N: ...".
func tomlError(path string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s line %d: %s", path, pe.Position.Line, pe.Message)
	}
	if m := typeError.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("%s line %s: %s: %s", path, m[1], m[2], m[3])
	}
	return fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "toml: "))
}

// checkKeys refuses any key outside the schema, matched exactly: the
// decoder alone would take "Hosts" for "hosts", and would skip a
// misspelt "hots" without a word, leaving a rule wider than meant.
func (f *policyFile) checkKeys() error {
	seen := map[string]int{}
	for _, k := range f.md.Keys() {
		plain := k.String()
		n := seen[plain]
		seen[plain]++
		var want []string
		switch {
		case len(k) == 1:
			want = topKeys
		case k[0] == "egress" && len(k) == 2:
			want = egressKeys
		case k[0] == "secrets" && len(k) == 2:
			if err := checkName(k[1]); err != nil {
				return fmt.Errorf("%s: %w", f.nth(plain, n), err)
			}
			continue
		case k[0] == "secrets" && len(k) == 3:
			want = secretKeys
		case k[0] == "secrets" && len(k) == 4 && k[2] == "rule":
			want = ruleKeys
		}
		if !containsStr(want, k[len(k)-1]) {
			where := "here"
			if len(k) > 1 {
				where = "in [" + k[:len(k)-1].String() + "]"
			}
			return fmt.Errorf("%s: unknown key %q %s (want one of: %s)", f.nth(plain, n), k[len(k)-1], where, strings.Join(want, ", "))
		}
	}
	if u := f.md.Undecoded(); len(u) > 0 {
		return fmt.Errorf("%s: unknown key %q", f.nth(u[0].String(), 0), u[0].String())
	}
	return nil
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func checkName(name string) error {
	if !envName.MatchString(name) {
		return fmt.Errorf("secret name %q is not an environment variable name", name)
	}
	return nil
}

// at names a key's place for a message: "FILE line N", or "FILE" when the
// line cannot be found. Keys inside the n-th [[...rule]] table are named
// with the index: at("secrets", "X", "rule[1]", "hosts").
func (f *policyFile) at(key ...string) string {
	want := indexedKey(key)
	for _, l := range f.lines {
		if l.key == want {
			return f.path + " line " + strconv.Itoa(l.line)
		}
	}
	return f.path
}

// nth names the place of the n-th occurrence of a key written without
// indexes, as the decoder lists them. A key the scan did not see (inside
// an inline table) is placed at the nearest key that holds it.
func (f *policyFile) nth(plain string, n int) string {
	for _, l := range f.lines {
		if l.plain == plain {
			if n == 0 {
				return f.path + " line " + strconv.Itoa(l.line)
			}
			n--
		}
	}
	best := keyLine{}
	for _, l := range f.lines {
		if strings.HasPrefix(plain, l.plain+".") && len(l.plain) > len(best.plain) {
			best = l
		}
	}
	if best.line > 0 {
		return f.path + " line " + strconv.Itoa(best.line)
	}
	return f.path
}

// defined reports whether the file sets the key.
func (f *policyFile) defined(key ...string) bool { return f.md.IsDefined(key...) }

// secretNames lists the secrets the file names, in the file's order.
func (f *policyFile) secretNames() []string {
	names := make([]string, 0, len(f.doc.Secrets))
	for n := range f.doc.Secrets {
		names = append(names, n)
	}
	line := func(n string) int {
		for _, l := range f.lines {
			if l.key == indexedKey([]string{"secrets", n}) || strings.HasPrefix(l.key, indexedKey([]string{"secrets", n})+".") {
				return l.line
			}
		}
		return 0
	}
	sort.SliceStable(names, func(i, j int) bool {
		li, lj := line(names[i]), line(names[j])
		if li != lj {
			return li < lj
		}
		return names[i] < names[j]
	})
	return names
}

// indexedKey joins key parts as toml.Key does; a part "rule[1]" keeps its
// index outside the quoting.
func indexedKey(parts []string) string {
	out := make([]string, len(parts))
	for i, p := range parts {
		idx := ""
		if j := strings.LastIndexByte(p, '['); j > 0 && strings.HasSuffix(p, "]") {
			p, idx = p[:j], p[j:]
		}
		out[i] = toml.Key{p}.String() + idx
	}
	return strings.Join(out, ".")
}
