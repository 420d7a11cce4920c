package launcher

import (
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

const scanDoc = `# comment [not.a.table]
top = 1
[egress]   # trailing comment
allow = [
  "a.example.com", # ] not the end
  "[b]",
]
deny = ["x"] # [c]
note = """
[not.a.table]
fake = "key"
"""
after = 'lit' 
[secrets."A.B"]
hosts = ["h"]
  [ secrets . C ]
a.b = { x = 1 }
[[secrets.C.rule]]
hosts = ["1"]
[[secrets.C.rule]]
'quoted key' = "2"
`

func TestScanKeys(t *testing.T) {
	if _, err := toml.Decode(scanDoc, new(map[string]any)); err != nil {
		t.Fatalf("test document does not parse: %v", err)
	}
	want := []keyLine{
		{"top", "top", 2},
		{"egress", "egress", 3},
		{"egress.allow", "egress.allow", 4},
		{"egress.deny", "egress.deny", 8},
		{"egress.note", "egress.note", 9},
		{"egress.after", "egress.after", 13},
		{`secrets."A.B"`, `secrets."A.B"`, 14},
		{`secrets."A.B".hosts`, `secrets."A.B".hosts`, 15},
		{"secrets.C", "secrets.C", 16},
		{"secrets.C.a.b", "secrets.C.a.b", 17},
		{"secrets.C.rule[0]", "secrets.C.rule", 18},
		{"secrets.C.rule[0].hosts", "secrets.C.rule.hosts", 19},
		{"secrets.C.rule[1]", "secrets.C.rule", 20},
		{`secrets.C.rule[1]."quoted key"`, `secrets.C.rule."quoted key"`, 21},
	}
	if got := scanKeys([]byte(scanDoc)); !reflect.DeepEqual(got, want) {
		t.Fatalf("scanKeys:\n got %v\nwant %v", got, want)
	}
}

// FuzzPolicy: the parser and the line scanner never panic, every key the
// decoder reports in a table header or key line is found by the scanner,
// and a policy file never puts a loaded value into an error.
func FuzzPolicy(f *testing.F) {
	f.Add(userPolicy)
	f.Add(scanDoc)
	f.Add("[egress]\ndefault = \"deny\"\nallow = [\n\"a.example.com\",\n]\n")
	f.Add("[[secrets.A_KEY.rule]]\nhosts = ['a.example.com']\npaths = [\"/v1/*\"]\n")
	f.Add("[secrets.A_KEY]\nhosts = [\"real-value-of-A_KEY-0123456789\"]\n")
	f.Fuzz(func(t *testing.T, doc string) {
		lines := scanKeys([]byte(doc))
		var md toml.MetaData
		md, err := toml.Decode(doc, new(map[string]any))
		if err == nil {
			count := map[string]int{}
			for _, l := range lines {
				count[l.plain]++
			}
			for _, k := range md.Keys() {
				if strings.ContainsAny(doc, "{\"'\\") {
					break // inline tables and quoting: the scanner falls back to a parent key
				}
				if count[k.String()] == 0 {
					t.Fatalf("scanner missed key %q in %q (found %v)", k.String(), doc, lines)
				}
			}
		}
		pf, err := parsePolicy("p.toml", []byte(doc))
		if err == nil {
			pol := &policy{bindings: map[string]*binding{}, loaded: loadedSecrets("A_KEY")}
			err = pol.applyUser(pf, map[string]bool{"A_KEY": true}, true)
			if err == nil {
				err = pol.narrow(pf, map[string]bool{"A_KEY": true})
			}
		}
		if err != nil {
			err = redactErr(err, loadedSecrets("A_KEY"))
			if strings.Contains(err.Error(), realOf("A_KEY")) {
				t.Fatalf("error holds a real value: %v", err)
			}
		}
	})
}
