package launcher

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// marker stands for a secret value in the fuzzed files: "$V" in the input
// becomes it. Its letters appear in none of cloak's messages.
const marker = "Vq7XKwZp3RtY9mJd"

// windows are the marker's 6-byte slices: a message that holds one has
// shown part of a value.
func windows(s string) []string {
	var out []string
	for i := 0; i+6 <= len(s); i++ {
		out = append(out, s[i:i+6])
	}
	return out
}

// FuzzSecretsFile: whatever a secrets file holds, loading it never panics,
// never puts any part of a value into an error or warning (godotenv's own
// errors quote the file, so they must never pass through), and names real
// line numbers.
func FuzzSecretsFile(f *testing.F) {
	for _, seed := range []string{
		"ANTHROPIC_API_KEY=$V\n",
		"A=$V\nB=short\nC=\n",
		"export A=$V\n# comment $V\nB: '$V'\n",
		"A=\"$V\nstill A\"\nB=$V\n",
		"A=$V\nbad line $V with spaces\n",
		"A=$V\nBAD-NAME=$V\n",
		"A='$V\n",
		"A=\"$V\\\"\n",
		"A=${B}$V\nB=$V\n",
		"   A =  $V  # trailing\n",
		"$V=value\n",
		"A=$V\r\nB=$V\r\n",
		"\xff\xfe=$V\n",
		"A=`$V`\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, template string) {
		data := []byte(strings.ReplaceAll(template, "$V", marker))
		path := filepath.Join(t.TempDir(), "secrets.env")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var said []string
		secrets, err := loadFiles([]source{{path: path, explicit: true}}, func(m string) { said = append(said, m) })
		if err != nil {
			said = append(said, err.Error())
		}
		lines := strings.Count(string(data), "\n") + 1
		if err != nil && strings.Contains(err.Error(), "malformed") {
			if n := badLine(data); n < 1 || n > lines {
				t.Fatalf("bad line %d in a file of %d lines", n, lines)
			}
		}
		for _, s := range secrets {
			if !strings.HasSuffix(s.source, " (plain)") && lineOf(data, s.name) < 1 {
				t.Fatalf("secret %q has no line in the file: %q", s.name, s.source)
			}
		}
		// Names are shown by design; only a value must not be.
		vars, _ := parseEnv(path, data)
		for name := range vars {
			for _, w := range windows(marker) {
				if strings.Contains(name, w) {
					return
				}
			}
		}
		for _, m := range said {
			for _, w := range windows(marker) {
				if strings.Contains(m, w) {
					t.Fatalf("message shows part of a value: %q", m)
				}
			}
		}
	})
}
