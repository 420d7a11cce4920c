package launcher

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretsFileOddities are fuzzing finds, kept as regressions.
func TestSecretsFileOddities(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       string // the error, or "NAME@SOURCE-SUFFIX" of the one secret
	}{
		// godotenv takes any byte that reads as a letter: a name cloak
		// once compiled into a regexp and panicked on.
		{"name not UTF-8", "\xff\xfe=" + marker + "\n", "secrets.env line 1: not a variable name"},
		{"bare word at the end", "\n0", "secrets.env: not a variable name"},
		// A lone CR ends a line for godotenv.
		{"lone CR", "A=0\rB=" + marker, "B@line 2"},
		// godotenv starts a statement right after a closing quote.
		{"statement after a quote", `A="0"B=` + marker, "B@line 1"},
		{"name with a dot", "a.b=" + marker, "secrets.env line 1: not a variable name"},
		{"name with a space", "A B=" + marker, "secrets.env line 1: not a variable name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "secrets.env")
			if err := os.WriteFile(path, []byte(tc.data), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := loadFiles([]source{{path: path, explicit: true}}, func(string) {})
			var long []string
			for _, s := range got {
				if !s.isPlain() {
					long = append(long, s.name+"@"+strings.TrimPrefix(s.source, path+" "))
				}
			}
			switch {
			case err != nil:
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %q, want %q", err, tc.want)
				}
				if strings.Contains(err.Error(), marker) {
					t.Fatalf("error shows a value: %q", err)
				}
			case len(long) != 1 || long[0] != tc.want:
				t.Fatalf("got %v, want %s", long, tc.want)
			}
		})
	}
}
