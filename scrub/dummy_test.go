package scrub

import (
	"strings"
	"testing"
)

func TestDummyKeepsLengthAndKnownPrefix(t *testing.T) {
	tests := []struct {
		real, prefix string
	}{
		{"sk-ant-api03-AbCdEfGh_IjKlMnOp-QrStUvWx", "sk-ant-api03-"},
		{"sk-ant-oat01-AbCdEfGhIjKlMnOp", "sk-ant-oat01-"},
		{"sk-ant-admin01-AbCdEfGhIjKl", "sk-ant-admin01-"},
		{"sk-ant-sid01-AbCdEfGhIjKl", "sk-ant-"},
		{"sk-proj-AbCdEfGhIjKlMnOp", "sk-proj-"},
		{"sk-svcacct-AbCdEfGhIjKl", "sk-svcacct-"},
		{"sk-admin-AbCdEfGhIjKl", "sk-admin-"},
		{"sk-AbCdEfGhIjKlMnOp", "sk-"},
		{"github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "github_pat_"},
		{"ghp_0123456789abcdefghijABCDEFGHIJ012345", "ghp_"},
		{"gho_0123456789abcdefghij", "gho_"},
		{"ghu_0123456789abcdefghij", "ghu_"},
		{"ghs_0123456789abcdefghij", "ghs_"},
		{"ghr_0123456789abcdefghij", "ghr_"},
		{"glpat-AbCdEfGhIjKlMnOpQrSt", "glpat-"},
		{"xoxb-1234567890-1234567890-AbCdEfGh", "xoxb-"},
		{"xoxp-1234567890-1234567890-AbCdEfGh", "xoxp-"},
		{"xapp-1-A0123456789-0123456789-abcdef", "xapp-"},
		{"hf_AbCdEfGhIjKlMnOpQrStUvWxYz", "hf_"},
		{"npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "npm_"},
		{"AKIAIOSFODNN7EXAMPLE", "AKIA"},
		{"ASIAIOSFODNN7EXAMPLE", "ASIA"},
		{"AIzaSyA-0123456789abcdefghijklmnopqrs", "AIza"},
		{"pk_live_0123456789abcdefABCDEF", "pk_live_"},
		{"sk_live_0123456789abcdefABCDEF", "sk_live_"},
		{"pk_test_0123456789abcdefABCDEF", "pk_test_"},
		{"sk_test_0123456789abcdefABCDEF", "sk_test_"},
		{"rk_live_0123456789abcdefABCDEF", "rk_live_"},
		{"dop_v1_0123456789abcdef0123456789abcdef", "dop_v1_"},
		{"SG.AbCdEfGhIjKlMnOp.QrStUvWxYz0123456789", "SG."},
		// Too little after the longest prefix: fall back to a shorter one
		// (or none) so that enough of the dummy is random.
		{"sk-ant-api03-AbCd", "sk-ant-"},
		{"ghp_AbCdEfG", ""},
		{"no-known-prefix-here", ""},
	}
	for _, tt := range tests {
		d, err := Dummy(tt.real, "")
		if err != nil {
			t.Fatalf("Dummy(%q): %v", tt.real, err)
		}
		if len(d) != len(tt.real) {
			t.Errorf("Dummy(%q) = %q: length %d, want %d", tt.real, d, len(d), len(tt.real))
		}
		if !strings.HasPrefix(d, tt.prefix) {
			t.Errorf("Dummy(%q) = %q: want prefix %q", tt.real, d, tt.prefix)
		}
		if got := knownPrefix(tt.real); got != tt.prefix {
			t.Errorf("knownPrefix(%q) = %q, want %q", tt.real, got, tt.prefix)
		}
	}
}

func TestDummyAlphabetClass(t *testing.T) {
	tests := []struct {
		name, real, alphabet string
	}{
		{"digits", "12345678901234567890", digits},
		{"lowercase hex", "0123456789abcdef0123456789abcdef", lowerHex},
		{"uppercase hex", "0123456789ABCDEF0123456789ABCDEF", upperHex},
		{"mixed case", "abcdefGHIJKLmnop", alnum},
		{"punctuation", "abc/+=:def\"ghi", alnum},
		{"prefix then digits", "sk-ant-api03-12345678901234", digits},
		{"prefix then hex", "dop_v1_0123456789abcdef0123456789abcdef", lowerHex},
		{"non-ASCII", "päßwörd-mit-ümläuten", alnum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Dummy(tt.real, "")
			if err != nil {
				t.Fatal(err)
			}
			rest := d[len(knownPrefix(tt.real)):]
			if !onlyFrom(rest, tt.alphabet) {
				t.Errorf("Dummy(%q) = %q: rest %q not from %q", tt.real, d, rest, tt.alphabet)
			}
		})
	}
}

func TestDummyNeverEqualsReal(t *testing.T) {
	// Short digit secrets give the smallest space of dummies.
	for _, real := range []string{"12345678", "00000000", "abcdefab", "sk-ant-12345678"} {
		for range 1000 {
			d, err := Dummy(real, "")
			if err != nil {
				t.Fatal(err)
			}
			if d == real {
				t.Fatalf("Dummy(%q) returned the real value", real)
			}
		}
	}
}

func TestDummyRandomWithoutPrev(t *testing.T) {
	real := "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx"
	a, errA := Dummy(real, "")
	b, errB := Dummy(real, "")
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if a == b {
		t.Errorf("two fresh dummies are equal: %q", a)
	}
}

func TestDummyReusesFittingPrev(t *testing.T) {
	tests := []struct {
		real, prev string
	}{
		{"sk-ant-api03-AbCdEfGhIjKlMnOp", "sk-ant-api03-ZyXwVuTsRqPoNmLk"},
		{"12345678901234567890", "98765432109876543210"},
		{"0123456789abcdef", "fedcba9876543210"},
		// Drawn from real's alphabet without sharing its class.
		{"abcdefGHIJKLmnop", "0123456789abcdef"},
	}
	for _, tt := range tests {
		d, err := Dummy(tt.real, tt.prev)
		if err != nil {
			t.Fatal(err)
		}
		if d != tt.prev {
			t.Errorf("Dummy(%q, %q) = %q, want prev kept", tt.real, tt.prev, d)
		}
	}
}

func TestDummyRejectsUnfitPrev(t *testing.T) {
	tests := []struct {
		name, real, prev string
	}{
		{"shorter", "sk-ant-api03-AbCdEfGhIjKlMnOp", "sk-ant-api03-ZyXwVuTsRqPoNm"},
		{"longer", "sk-ant-api03-AbCdEfGhIjKlMnOp", "sk-ant-api03-ZyXwVuTsRqPoNmLkJi"},
		{"other prefix", "sk-ant-api03-AbCdEfGhIjKlMnOp", "sk-proj-ZyXwVuTsRqPoNmLkJiHgFe"},
		{"prefix lost", "ghp_0123456789abcdefghij", "0123456789abcdefghijklmn"},
		{"other alphabet", "12345678901234567890", "abcdefghijklmnopqrst"},
		{"hex prev for digits", "12345678901234567890", "0123456789abcdef0123"},
		{"equal to real", "sk-ant-api03-AbCdEfGhIjKlMnOp", "sk-ant-api03-AbCdEfGhIjKlMnOp"},
		{"punctuation", "AbCdEfGhIjKlMnOp", "AbCdEfGh-jKlMnOp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Dummy(tt.real, tt.prev)
			if err != nil {
				t.Fatal(err)
			}
			if d == tt.prev {
				t.Errorf("Dummy(%q, %q) kept an unfit prev", tt.real, tt.prev)
			}
			if len(d) != len(tt.real) || d == tt.real {
				t.Errorf("Dummy(%q, %q) = %q: bad replacement", tt.real, tt.prev, d)
			}
		})
	}
}

func TestDummyLengthErrors(t *testing.T) {
	tests := []struct {
		name, real string
	}{
		{"empty", ""},
		{"too short", "hunter2"},
		{"too long", strings.Repeat("x", maxLen+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Dummy(tt.real, "")
			if err == nil {
				t.Fatalf("Dummy(%d bytes) = %q, want an error", len(tt.real), d)
			}
			if tt.real != "" && strings.Contains(err.Error(), tt.real) {
				t.Errorf("error %q contains the real value", err)
			}
		})
	}
	if _, err := Dummy(strings.Repeat("x", maxLen), ""); err != nil {
		t.Errorf("Dummy(64 KiB): %v", err)
	}
}

func TestDummyErrorOmitsValue(t *testing.T) {
	real := "s3cr3t!"
	_, err := Dummy(real, "")
	if err == nil {
		t.Fatal("want an error for a short secret")
	}
	if strings.Contains(err.Error(), real) {
		t.Errorf("error %q contains the real value", err)
	}
	if !strings.Contains(err.Error(), "7 bytes") {
		t.Errorf("error %q does not say the length", err)
	}
}
