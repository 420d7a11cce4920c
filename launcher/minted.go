package launcher

import (
	"fmt"
	"strings"

	"github.com/cloak-dev/cloak/proxy"
	"github.com/cloak-dev/cloak/scrub"
)

// A [[minted]] table names a token endpoint whose response holds a
// credential made during the session (a GitHub App installation token, an
// OAuth access token). The proxy keeps the real token, the child gets a
// dummy, and the dummy is swapped back only where the table's hosts and
// places allow. Only the user's policy file may hold one: it decides where
// a new credential may go, which widens the policy.

// mintedDoc is one [[minted]] table as written.
type mintedDoc struct {
	Name   string   `toml:"name"`
	Host   string   `toml:"host"`
	Path   string   `toml:"path"`
	Field  string   `toml:"field"`
	Hosts  []string `toml:"hosts"`
	Places []string `toml:"places"`
}

// mintedRule is a proxy minting rule and the table it came from.
type mintedRule struct {
	proxy.MintRule
	from string
}

// mintedRules parses the file's [[minted]] tables. A minted name may not
// be a loaded secret's: the audit log could not tell the two apart.
func (f *policyFile) mintedRules(have map[string]bool) ([]mintedRule, error) {
	var out []mintedRule
	for i, d := range f.doc.Minted {
		tbl := fmt.Sprintf("minted[%d]", i)
		at := func(k ...string) string { return f.at(append([]string{tbl}, k...)...) }
		for _, k := range [][2]string{{"name", d.Name}, {"host", d.Host}, {"field", d.Field}} {
			if strings.TrimSpace(k[1]) == "" {
				return nil, fmt.Errorf("%s: [[minted]] has no %s (name, host and field are required)", at(), k[0])
			}
		}
		if err := checkName(d.Name); err != nil {
			return nil, fmt.Errorf("%s: %w", at("name"), err)
		}
		if have[d.Name] {
			return nil, fmt.Errorf("%s: %s is the name of a loaded secret: give the minted token a name of its own", at("name"), d.Name)
		}
		host, err := proxy.ParseHostPattern(strings.TrimSpace(d.Host))
		if err != nil {
			return nil, fmt.Errorf("%s: host: %w", at("host"), err)
		}
		m := mintedRule{MintRule: proxy.MintRule{Host: host, Field: d.Field, Name: d.Name}, from: at()}
		if d.Path != "" || f.definedMinted(i, "path") {
			if _, err := parsePaths([]string{d.Path}); err != nil {
				return nil, fmt.Errorf("%s: path: %w", at("path"), err)
			}
			m.Path = d.Path
		}
		if d.Hosts != nil && len(d.Hosts) == 0 {
			return nil, fmt.Errorf("%s: hosts is empty (leave the key out to send the token nowhere)", at("hosts"))
		}
		if d.Places != nil {
			if len(d.Places) == 0 {
				return nil, fmt.Errorf("%s: places is empty (leave the key out to allow any)", at("places"))
			}
			if len(d.Hosts) == 0 {
				return nil, fmt.Errorf("%s: places without hosts: the token goes nowhere (add hosts = [...])", at("places"))
			}
		}
		if len(d.Hosts) > 0 {
			var r proxy.Rule
			if r.Hosts, err = parseHosts(d.Hosts); err != nil {
				return nil, fmt.Errorf("%s: hosts: %w", at("hosts"), err)
			}
			if len(d.Places) > 0 {
				if r.Places, err = parsePlaces(d.Places); err != nil {
					return nil, fmt.Errorf("%s: places: %w", at("places"), err)
				}
			}
			m.Rules = []proxy.Rule{r}
		}
		out = append(out, m)
	}
	return out, nil
}

// definedMinted reports whether the i-th [[minted]] table sets key on a
// line of its own (the decoder's IsDefined does not index arrays of
// tables): it tells `path = ""` from no path.
func (f *policyFile) definedMinted(i int, key string) bool {
	return f.at(fmt.Sprintf("minted[%d]", i), key) != f.path
}

// proxyMinted is the minting rules for the proxy.
func (pol *policy) proxyMinted() []proxy.MintRule {
	var out []proxy.MintRule
	for _, m := range pol.minted {
		out = append(out, m.MintRule)
	}
	return out
}

// mintDummy makes a minted token's dummy the way every other dummy is
// made, so the child cannot tell a minted one by its shape.
func mintDummy(real string) (string, error) { return scrub.Dummy(real, "") }
