package launcher

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const fakeReal = "sk-ant-api03-THISISAFAKEREALVALUEFORTESTS0123"

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secrets.env")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFilesReportsBadLineWithoutValues(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		line          string
	}{
		{"bad name", "A=" + fakeReal + "\nB C=" + fakeReal + "\n", "line 2"},
		{"unterminated quote", "A=" + fakeReal + "\n\nB=\"" + fakeReal + "\nC=x\n", "line 3"},
		{"after multi-line value", "A=\"x\n" + fakeReal + "\"\nB=" + fakeReal + "\n!!=" + fakeReal + "\n", "line 4"},
		{"empty value", "A=" + fakeReal + "\nexport EMPTY=\n", "line 2: EMPTY is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.content)
			_, err := loadFiles([]source{{path: p, explicit: true}}, func(string) {})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), p+" "+tc.line) {
				t.Errorf("error %q does not name %s %s", err, p, tc.line)
			}
			if strings.Contains(err.Error(), fakeReal) || strings.Contains(err.Error(), "THISISAFAKE") {
				t.Errorf("error shows a secret value: %q", err)
			}
		})
	}
}

func TestLoadFilesLaterFileWinsAndMissingDefaultIsFine(t *testing.T) {
	a := writeFile(t, "K=first-value-1234\n")
	b := writeFile(t, "K=second-value-1234\n")
	got, err := loadFiles([]source{{path: a}, {path: filepath.Join(t.TempDir(), "absent")}, {path: b}}, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].real != "second-value-1234" || !strings.HasPrefix(got[0].source, b) {
		t.Fatalf("got %v", got)
	}
	_, err = loadFiles([]source{{path: filepath.Join(t.TempDir(), "absent"), explicit: true}}, func(string) {})
	if err == nil || !strings.Contains(err.Error(), "absent") {
		t.Fatalf("missing explicit file: %v", err)
	}
}

func TestShortValueIsPlainWithWarning(t *testing.T) {
	p := writeFile(t, "PORT=3000\nK="+fakeReal+"\n")
	var warned []string
	got, err := loadFiles([]source{{path: p}}, func(s string) { warned = append(warned, s) })
	if err != nil {
		t.Fatal(err)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "line 1: PORT") {
		t.Fatalf("warnings %q", warned)
	}
	if got[1].name != "PORT" || !got[1].isPlain() || got[0].isPlain() {
		t.Fatalf("got %v", got)
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{"GOOD": fakeReal, "EMPTY": "", "SHORT": "abc"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if got, err := fromEnv([]string{"GOOD"}, lookup); err != nil || got[0].real != fakeReal {
		t.Fatalf("GOOD: %v %v", got, err)
	}
	for _, n := range []string{"MISSING", "EMPTY", "SHORT"} {
		_, err := fromEnv([]string{n}, lookup)
		if err == nil || !strings.Contains(err.Error(), n) {
			t.Errorf("%s: error %v", n, err)
		}
	}
}

func TestSecretNeverPrintsItsValue(t *testing.T) {
	s := secret{name: "K", real: fakeReal, source: "x"}
	for _, out := range []string{s.String(), strings.Join([]string{s.String()}, "")} {
		if strings.Contains(out, fakeReal) {
			t.Fatal("secret printed its value")
		}
	}
}
