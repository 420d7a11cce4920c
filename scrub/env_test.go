package scrub

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// escaping is a real value with characters that every encoding changes.
var escaping = Secret{Name: "TOKEN", Real: `abc/+=:def"ghi<&>?`, Dummy: "DmYdMyDmYdMyDmYdMy"}

func jsonString(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[1 : len(b)-1])
}

func mustEnv(t *testing.T, parent []string, secrets []Secret, drop []string) []string {
	t.Helper()
	out, err := Env(parent, secrets, drop)
	if err != nil {
		t.Fatalf("Env: %v", err)
	}
	if leaked := Leaks(out, secrets); leaked != nil {
		t.Fatalf("Env output leaks %v: %q", leaked, out)
	}
	return out
}

func TestEnvReplacesNamedVariable(t *testing.T) {
	s := Secret{Name: "ANTHROPIC_API_KEY", Real: "sk-ant-api03-realrealreal", Dummy: "sk-ant-api03-DUMMYDUMMYDUM"}
	got := mustEnv(t, []string{"HOME=/home/u", "ANTHROPIC_API_KEY=sk-ant-api03-realrealreal", "TERM=xterm"}, []Secret{s}, nil)
	want := []string{"HOME=/home/u", "ANTHROPIC_API_KEY=sk-ant-api03-DUMMYDUMMYDUM", "TERM=xterm"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestEnvNamedVariableGetsDummyWhateverItHeld(t *testing.T) {
	// The value under a secret's name is replaced outright, even if it is
	// not (or no longer) the real value.
	s := Secret{Name: "GH_TOKEN", Real: "ghp_realrealrealreal", Dummy: "ghp_DUMMYDUMMYDUMMY"}
	got := mustEnv(t, []string{"GH_TOKEN=something-else"}, []Secret{s}, nil)
	if want := []string{"GH_TOKEN=ghp_DUMMYDUMMYDUMMY"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestEnvReplacesRealInsideOtherValues(t *testing.T) {
	s := Secret{Name: "API_TOKEN", Real: "r3alT0kenValue", Dummy: "DummyDummyDumm"}
	tests := []struct{ value, want string }{
		{"https://user:r3alT0kenValue@host/", "https://user:DummyDummyDumm@host/"},
		{"Bearer r3alT0kenValue", "Bearer DummyDummyDumm"},
		{"r3alT0kenValue", "DummyDummyDumm"},
		{"a r3alT0kenValue b r3alT0kenValue", "a DummyDummyDumm b DummyDummyDumm"},
		{"r3alT0kenValu", "r3alT0kenValu"},
	}
	for _, tt := range tests {
		got := mustEnv(t, []string{"V=" + tt.value}, []Secret{s}, nil)
		if want := []string{"V=" + tt.want}; !slices.Equal(got, want) {
			t.Errorf("value %q: got %q, want %q", tt.value, got, want)
		}
	}
}

func TestEnvReplacesEncodedForms(t *testing.T) {
	r, d := escaping.Real, escaping.Dummy
	tests := []struct{ name, real, dummy string }{
		{"query escaped", url.QueryEscape(r), url.QueryEscape(d)},
		{"path escaped", url.PathEscape(r), url.PathEscape(d)},
		{"JSON escaped", jsonString(t, r), jsonString(t, d)},
		{"JSON without HTML escaping", `abc/+=:def\"ghi<&>?`, d},
		{"base64 std", base64.StdEncoding.EncodeToString([]byte(r)), base64.StdEncoding.EncodeToString([]byte(d))},
		{"base64 raw std", base64.RawStdEncoding.EncodeToString([]byte(r)), base64.RawStdEncoding.EncodeToString([]byte(d))},
		{"base64 URL", base64.URLEncoding.EncodeToString([]byte(r)), base64.URLEncoding.EncodeToString([]byte(d))},
		{"base64 raw URL", base64.RawURLEncoding.EncodeToString([]byte(r)), base64.RawURLEncoding.EncodeToString([]byte(d))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.real == r {
				t.Fatalf("test value %q does not change under this encoding", r)
			}
			parent := []string{"V=pre " + tt.real + " post"}
			got := mustEnv(t, parent, []Secret{escaping}, nil)
			if want := []string{"V=pre " + tt.dummy + " post"}; !slices.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

func TestEnvReplacesLongerSecretFirst(t *testing.T) {
	short := Secret{Name: "SHORT", Real: "abcdefgh", Dummy: "SSSSSSSS"}
	long := Secret{Name: "LONG", Real: "abcdefgh-ijklmnop", Dummy: "LLLLLLLLLLLLLLLLL"}
	tests := []struct{ value, want string }{
		{"abcdefgh-ijklmnop", "LLLLLLLLLLLLLLLLL"},
		{"abcdefgh abcdefgh-ijklmnop", "SSSSSSSS LLLLLLLLLLLLLLLLL"},
		{"xabcdefgh-ijklmnopx", "xLLLLLLLLLLLLLLLLLx"},
		{"abcdefgh-ijklmno", "SSSSSSSS-ijklmno"},
	}
	for _, order := range [][]Secret{{short, long}, {long, short}} {
		for _, tt := range tests {
			got := mustEnv(t, []string{"V=" + tt.value}, order, nil)
			if want := []string{"V=" + tt.want}; !slices.Equal(got, want) {
				t.Errorf("value %q, secrets %v: got %q, want %q", tt.value, order, got, want)
			}
		}
	}
}

func TestEnvDropsNames(t *testing.T) {
	s := Secret{Name: "TOKEN", Real: "tokentokentoken", Dummy: "DUMMYDUMMYDUMMY"}
	parent := []string{"A=1", "TOKEN=tokentokentoken", "SRC=x", "B=2", "SRC=y"}
	got := mustEnv(t, parent, []Secret{s}, []string{"SRC", "TOKEN", "ABSENT"})
	if want := []string{"A=1", "B=2"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestEnvDropsEntriesWithoutEquals(t *testing.T) {
	got := mustEnv(t, []string{"A=1", "garbage", "", "B=", "=C:=C:\\"}, []Secret{escaping}, nil)
	if want := []string{"A=1", "B=", "=C:=C:\\"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestEnvKeepsOrderAndDoesNotAddSecrets(t *testing.T) {
	other := Secret{Name: "NOT_IN_PARENT", Real: "elsewhere-value", Dummy: "ELSEWHERE-DUMMY"}
	parent := []string{"Z=1", "TOKEN=x", "A=" + escaping.Real, "Z=2"}
	got := mustEnv(t, parent, []Secret{escaping, other}, nil)
	want := []string{"Z=1", "TOKEN=" + escaping.Dummy, "A=" + escaping.Dummy, "Z=2"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestEnvScrubsNames(t *testing.T) {
	s := Secret{Name: "TOKEN", Real: "tokentokentoken", Dummy: "DUMMYDUMMYDUMMY"}
	got := mustEnv(t, []string{"X_tokentokentoken=1"}, []Secret{s}, nil)
	if want := []string{"X_DUMMYDUMMYDUMMY=1"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestEnvFailsClosedWhenRealStraddlesEquals(t *testing.T) {
	// The entry "user=hunter2hunter2" spells the real value, though neither
	// its name nor its value contains it.
	s := Secret{Name: "PASSWORD", Real: "user=hunter2hunter2", Dummy: "DUMMYDUMMYDUMMYDUMM"}
	out, err := Env([]string{"user=hunter2hunter2"}, []Secret{s}, nil)
	if err == nil {
		t.Fatalf("Env = %q, want an error", out)
	}
	if strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "PASSWORD") {
		t.Errorf("error %q: want the name and not the value", err)
	}
}

func TestEnvRejectsBadSecrets(t *testing.T) {
	good := Secret{Name: "GOOD", Real: "good-real-value", Dummy: "GOODDUMMYVALUE1"}
	tests := []struct {
		name   string
		secret Secret
	}{
		{"empty real", Secret{Name: "BAD", Real: "", Dummy: "DUMMYDUMMY"}},
		{"empty dummy", Secret{Name: "BAD", Real: "realrealreal", Dummy: ""}},
		{"short real", Secret{Name: "BAD", Real: "realrea", Dummy: "DUMMYDU"}},
		{"empty name", Secret{Name: "", Real: "realrealreal", Dummy: "DUMMYDUMMYDU"}},
		{"name with equals", Secret{Name: "BAD=1", Real: "realrealreal", Dummy: "DUMMYDUMMYDU"}},
		{"duplicate name", Secret{Name: "GOOD", Real: "realrealreal", Dummy: "DUMMYDUMMYDU"}},
		{"dummy equals real", Secret{Name: "BAD", Real: "realrealreal", Dummy: "realrealreal"}},
		{"dummy holds a real", Secret{Name: "BAD", Real: "realrealreal", Dummy: "xgood-real-valuex"}},
		{"dummy holds an encoded real", Secret{Name: "BAD", Real: "realrealreal", Dummy: "Z29vZC1yZWFsLXZhbHVl"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Env([]string{"BAD=x", "GOOD=y"}, []Secret{good, tt.secret}, nil)
			if !errors.Is(err, ErrBadSecret) {
				t.Fatalf("Env = %q, %v; want ErrBadSecret", out, err)
			}
			if out != nil {
				t.Errorf("Env returned %q with an error", out)
			}
			if tt.secret.Real != "" && strings.Contains(err.Error(), tt.secret.Real) {
				t.Errorf("error %q contains the real value", err)
			}
			if tt.secret.Name != "" && !strings.Contains(err.Error(), tt.secret.Name) {
				t.Errorf("error %q does not name the secret", err)
			}
		})
	}
}

func TestEnvSharedRealValue(t *testing.T) {
	a := Secret{Name: "GH_TOKEN", Real: "ghp_sharedsharedshared", Dummy: "ghp_AAAAAAAAAAAAAAAAAA"}
	b := Secret{Name: "GITHUB_TOKEN", Real: "ghp_sharedsharedshared", Dummy: "ghp_BBBBBBBBBBBBBBBBBB"}
	parent := []string{"GH_TOKEN=ghp_sharedsharedshared", "GITHUB_TOKEN=ghp_sharedsharedshared", "X=ghp_sharedsharedshared"}
	got := mustEnv(t, parent, []Secret{a, b}, nil)
	want := []string{"GH_TOKEN=" + a.Dummy, "GITHUB_TOKEN=" + b.Dummy, "X=" + a.Dummy}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSetReplacesOrAppends(t *testing.T) {
	tests := []struct {
		name       string
		env        []string
		key, value string
		want       []string
	}{
		{"append", []string{"A=1"}, "B", "2", []string{"A=1", "B=2"}},
		{"append to empty", nil, "B", "2", []string{"B=2"}},
		{"replace", []string{"A=1", "B=old", "C=3"}, "B", "2", []string{"A=1", "B=2", "C=3"}},
		{"collapse duplicates", []string{"B=x", "A=1", "B=y", "B=z"}, "B", "2", []string{"B=2", "A=1"}},
		{"prefix of another name", []string{"BB=1"}, "B", "2", []string{"BB=1", "B=2"}},
		{"empty value", []string{"B=1"}, "B", "", []string{"B="}},
		{"value with equals", []string{"B=1"}, "B", "a=b", []string{"B=a=b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := slices.Clone(tt.env)
			got := Set(tt.env, tt.key, tt.value)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if !slices.Equal(tt.env, before) {
				t.Errorf("Set modified its input: %q", tt.env)
			}
		})
	}
}

func TestLeaksFindsEveryForm(t *testing.T) {
	r := escaping.Real
	other := Secret{Name: "OTHER", Real: "other-real-value", Dummy: "OTHERDUMMYVALUE1"}
	secrets := []Secret{escaping, other}
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"clean", []string{"A=" + escaping.Dummy, "B=other"}, nil},
		{"raw in value", []string{"A=x" + r}, []string{"TOKEN"}},
		{"raw in name", []string{"X" + other.Real + "=1"}, []string{"OTHER"}},
		{"query", []string{"A=" + url.QueryEscape(r)}, []string{"TOKEN"}},
		{"path", []string{"A=" + url.PathEscape(r)}, []string{"TOKEN"}},
		{"json", []string{"A=" + jsonString(t, r)}, []string{"TOKEN"}},
		{"base64", []string{"A=" + base64.RawURLEncoding.EncodeToString([]byte(r))}, []string{"TOKEN"}},
		{"both, reported once, in secrets order", []string{"A=" + other.Real, "B=" + r, "C=" + r}, []string{"TOKEN", "OTHER"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Leaks(tt.env, secrets); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
