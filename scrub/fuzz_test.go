package scrub

import (
	"fmt"
	"strings"
	"testing"
)

func FuzzEnv(f *testing.F) {
	f.Add("", "sk-ant-api03-AbCdEfGhIjKl")
	f.Add("Bearer ", `abc/+=:def"ghi<&>?`)
	f.Add("https://user:@host/", "p@ss w0rd!")
	f.Add("\x00\xff", "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8")
	f.Add("aaaaaaaaaaaaaaa", "aaaaaaaa")
	f.Add("sk-sk-sk-", "sk-12345678")
	f.Add(`{"k":"`, "<&>\u2028é€ü\"\\")
	f.Add("SECRET=x", "x=abcdefgh")
	f.Add("Vm0wd2QyUXlVWGxW", "Vm0wd2QyUXlVWGxWV0d4")
	f.Fuzz(func(t *testing.T, value, real string) {
		if len(real) < MinLen || len(real) > maxLen {
			t.Skip()
		}
		dummy, err := Dummy(real, "")
		if err != nil {
			t.Fatalf("Dummy(%d bytes): %v", len(real), err)
		}
		secrets := []Secret{{Name: "SECRET", Real: real, Dummy: dummy}}
		parent := []string{"SECRET=" + real, "V=" + value, "R=" + value + real + value, value}
		for i, form := range forms(real) {
			parent = append(parent, fmt.Sprintf("E%d=%s%s%s", i, value, form, value))
		}
		// The base64 of a longer string that holds real, at each of the
		// three alignments.
		var inside []string
		for i, e := range encodings {
			for _, pre := range []string{"", "a", "ab"} {
				b64 := e.enc.EncodeToString([]byte(pre + value + real + value))
				inside = append(inside, fmt.Sprintf("B%d_%d=%s", i, len(pre), b64))
			}
		}
		parent = append(parent, inside...)

		out, err := Env(parent, secrets, nil)
		if err != nil {
			// Failing closed is right only when the real value can
			// straddle the "=" between a name and its value.
			if !strings.Contains(real, "=") {
				t.Fatalf("Env: %v", err)
			}
			if strings.Contains(err.Error(), real) {
				t.Fatalf("error %q contains the real value", err)
			}
			return
		}
		for _, e := range out {
			if strings.Contains(e, real) {
				t.Fatalf("real value in %q", e)
			}
		}
		if leaked := Leaks(out, secrets); leaked != nil {
			t.Fatalf("Leaks = %v in %q", leaked, out)
		}
		if out[0] != "SECRET="+dummy {
			t.Fatalf("named variable became %q, want the dummy", out[0])
		}
		if len(longMiddles(real)) < numMiddles {
			return // too short to be recognised inside longer base64
		}
		for _, e := range out[len(out)-len(inside):] {
			name, b64, _ := strings.Cut(e, "=")
			enc := encodings[int(name[1]-'0')].enc
			plain, err := enc.DecodeString(b64)
			if err != nil {
				t.Fatalf("%s is no longer base64: %v", name, err)
			}
			if strings.Contains(string(plain), real) {
				t.Fatalf("%s decodes to the real value", name)
			}
		}
	})
}

func FuzzDummy(f *testing.F) {
	f.Add("sk-ant-api03-AbCdEfGhIjKlMnOp", "")
	f.Add("sk-ant-api03-AbCdEfGhIjKlMnOp", "sk-ant-api03-ZyXwVuTsRqPoNmLk")
	f.Add("12345678", "87654321")
	f.Add("0123456789abcdef", "0123456789abcdef")
	f.Add("ABCDEF0123456789", "")
	f.Add("short", "")
	f.Add("ghp_1234567", "ghp_abcdefg")
	f.Add("\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", "AAAAAAAA")
	f.Fuzz(func(t *testing.T, real, prev string) {
		d, err := Dummy(real, prev)
		if len(real) < MinLen || len(real) > maxLen {
			if err == nil {
				t.Fatalf("Dummy(%d bytes) = %q, want an error", len(real), d)
			}
			// The error may depend on the length only: a short value can
			// be a substring of any fixed text, so compare messages.
			_, other := Dummy(strings.Repeat("\x00", len(real)), prev)
			if other == nil || err.Error() != other.Error() {
				t.Fatalf("error %q depends on the value, not just its length", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Dummy(%d bytes): %v", len(real), err)
		}
		if len(d) != len(real) || d == real {
			t.Fatalf("Dummy(%q, %q) = %q: wrong length or equal to real", real, prev, d)
		}
		prefix := knownPrefix(real)
		if !strings.HasPrefix(d, prefix) {
			t.Fatalf("Dummy(%q) = %q: lost prefix %q", real, d, prefix)
		}
		if rest := real[len(prefix):]; !sameAlphabet(d[len(prefix):], rest) {
			t.Fatalf("Dummy(%q) = %q: rest not from the alphabet of %q", real, d, rest)
		}
		if again, err := Dummy(real, d); err != nil || again != d {
			t.Fatalf("Dummy(%q, %q) = %q, %v: a dummy it made does not fit", real, d, again, err)
		}
	})
}

// sameAlphabet reports whether got uses only the dummy alphabet that the
// class of rest calls for. It is written apart from classOf on purpose.
func sameAlphabet(got, rest string) bool {
	only := func(s, set string) bool { return strings.Trim(s, set) == "" }
	switch {
	case only(rest, digits):
		return only(got, digits)
	case only(rest, lowerHex):
		return only(got, lowerHex)
	case only(rest, upperHex):
		return only(got, upperHex)
	}
	return only(got, alnum)
}
