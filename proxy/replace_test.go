package proxy

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// naiveReplace is the specification the streaming replacer must meet: at
// each byte, the longest pair that matches there wins; with redactTail, an
// input that ends inside a possible match (and has no full match left) ends
// with the start of that pair's to.
func naiveReplace(pairs []pair, in []byte, redactTail bool) []byte {
	var out []byte
	longestAt := func(i int) *pair {
		var best *pair
		for k := range pairs {
			p := &pairs[k]
			if bytes.HasPrefix(in[i:], p.from) && (best == nil || len(p.from) > len(best.from)) {
				best = p
			}
		}
		return best
	}
	last := -1 // start of the last full match anywhere
	for k := range pairs {
		last = max(last, bytes.LastIndex(in, pairs[k].from))
	}
	fullLeft := func(i int) bool { return last >= i }
	for i := 0; i < len(in); {
		if p := longestAt(i); p != nil {
			out = append(out, p.to...)
			i += len(p.from)
			continue
		}
		if redactTail && !fullLeft(i) {
			var best *pair
			for k := range pairs {
				p := &pairs[k]
				if len(p.from) > len(in)-i && bytes.HasPrefix(p.from, in[i:]) && (best == nil || len(p.from) > len(best.from)) {
					best = p
				}
			}
			if best != nil {
				held := len(in) - i
				if held < sharedPrefix(best.from, best.to)+tailMin {
					return append(out, in[i:]...) // too short to tell: no oracle
				}
				if len(best.to) >= held {
					return append(out, best.to[:held]...)
				}
				return append(out, best.to...)
			}
		}
		out = append(out, in[i])
		i++
	}
	return out
}

// chunkReader hands out its data in the chunk sizes of a schedule (1 to
// 256 bytes each, cycling), the way reads split across a network.
type chunkReader struct {
	data  []byte
	sched []byte
	n     int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	size := len(c.data)
	if len(c.sched) > 0 {
		size = int(c.sched[c.n%len(c.sched)]) + 1
		c.n++
	}
	size = min(size, len(p), len(c.data))
	copy(p, c.data[:size])
	c.data = c.data[size:]
	return size, nil
}

func mustSet(t testing.TB, pairs []pair, redactTail bool) *replaceSet {
	t.Helper()
	s, err := newReplaceSet(pairs)
	if err != nil {
		t.Fatal(err)
	}
	s.redactTail = redactTail
	return s
}

func pairOf(from, to string) pair { return pair{from: []byte(from), to: []byte(to)} }

func TestReplacerTable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pairs []pair
		in    string
		want  string
		tail  bool
	}{
		{"none", []pair{pairOf("abc", "xyz")}, "hello", "hello", false},
		{"one", []pair{pairOf("abc", "xyz")}, "1abc2", "1xyz2", false},
		{"adjacent", []pair{pairOf("abc", "xyz")}, "abcabc", "xyzxyz", false},
		{"at ends", []pair{pairOf("abc", "xyz")}, "abc-abc", "xyz-xyz", false},
		{"overlap leftmost wins", []pair{pairOf("abcd", "1111"), pairOf("cdef", "2222")}, "xabcdefx", "x1111efx", false},
		{"prefix longest wins", []pair{pairOf("sk-abc", "AAAAAA"), pairOf("sk-abcdef", "BBBBBBBBB")}, "sk-abcdef sk-abc", "BBBBBBBBB AAAAAA", false},
		{"shorter inside longer's start", []pair{pairOf("abcdef", "111111"), pairOf("cd", "22")}, "abcdeX", "ab22eX", false},
		{"unequal lengths", []pair{pairOf("ab", "long-value"), pairOf("cdef", "z")}, "ab cdef", "long-value z", false},
		{"partial at end kept", []pair{pairOf("secret", "dummyy")}, "my secr", "my secr", false},
		{"short partial at end kept", []pair{pairOf("secret", "dummyy")}, "my secr", "my secr", true},
		{"long partial at end redacted", []pair{pairOf("secret-0123456789abcdefXYZ", "dummyy-0123456789abcdefXYZ")}, "my secret-0123456789abcdefX", "my dummyy-0123456789abcdefX", true},
		{"partial past a shared prefix", []pair{pairOf("sk-0123456789abcdefXYZ", "sk-ZYXWVUTSRQPONMLKJI")}, "a sk-0123456789abcdef", "a sk-ZYXWVUTSRQPONMLK", true},
		{"partial within a shared prefix's reach kept", []pair{pairOf("sk-0123456789abcdefXYZ", "sk-ZYXWVUTSRQPONMLKJI")}, "a sk-0123456789abcde", "a sk-0123456789abcde", true},
		{"no self-rematch", []pair{pairOf("aa", "ab"), pairOf("ba", "xx")}, "aaa", "aba", false},
		{"binary", []pair{pairOf("\x00\xff\x00", "\x01\x02\x03")}, "\xff\x00\xff\x00\x00", "\xff\x01\x02\x03\x00", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustSet(t, tc.pairs, tc.tail)
			if want := string(naiveReplace(tc.pairs, []byte(tc.in), tc.tail)); want != tc.want {
				t.Fatalf("naive reference gives %q, table says %q", want, tc.want)
			}
			for _, r := range []io.Reader{
				strings.NewReader(tc.in),
				iotest.OneByteReader(strings.NewReader(tc.in)),
				iotest.DataErrReader(strings.NewReader(tc.in)),
				iotest.HalfReader(strings.NewReader(tc.in)),
			} {
				got, err := io.ReadAll(s.reader(r, nil))
				if err != nil || string(got) != tc.want {
					t.Errorf("%T: got %q, %v; want %q", r, got, err, tc.want)
				}
			}
		})
	}
}

// TestReplacerEverySplit puts a match at every possible split between two
// reads.
func TestReplacerEverySplit(t *testing.T) {
	s := mustSet(t, []pair{{from: []byte(dummyKey), to: []byte(realKey), id: 7}}, false)
	in := "{\"key\":\"" + dummyKey + "\"}"
	want := "{\"key\":\"" + realKey + "\"}"
	for cut := 0; cut <= len(in); cut++ {
		r := io.MultiReader(strings.NewReader(in[:cut]), strings.NewReader(in[cut:]))
		var ids []int
		got, err := io.ReadAll(s.reader(r, func(id int) error { ids = append(ids, id); return nil }))
		if err != nil || string(got) != want {
			t.Fatalf("cut at %d: got %q, %v", cut, got, err)
		}
		if len(ids) != 1 || ids[0] != 7 {
			t.Fatalf("cut at %d: hook saw %v, want [7]", cut, ids)
		}
	}
}

// TestReplacerEmitsWithoutWaiting: bytes that cannot start a match come
// out of the Read that read them; only a possible start of a match waits,
// and never more than the longest pattern minus one byte.
func TestReplacerEmitsWithoutWaiting(t *testing.T) {
	s := mustSet(t, []pair{pairOf(realKey, dummyKey)}, false)
	pr, pw := io.Pipe()
	r := s.reader(pr, nil)
	buf := make([]byte, 1024)
	read := func(send, want string) {
		t.Helper()
		go func() { _, _ = pw.Write([]byte(send)) }()
		n, err := r.Read(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("sent %q: read %q, %v; want %q", send, buf[:n], err, want)
		}
	}
	read("event: one\ndata: 1\n\n", "event: one\ndata: 1\n\n")
	// "sk-ant-api03-REAL" may be the start of the real key: held back.
	read("data: sk-ant-api03-REAL", "data: ")
	// The next bytes show it is not.
	read("X\n\n", "sk-ant-api03-REALX\n\n")
	read("data: "+realKey[:10], "data: ")
	read(realKey[10:]+"\n\n", dummyKey+"\n\n")
	// The longest possible hold-back is one byte short of the pattern.
	read("x"+realKey[:len(realKey)-1], "x")
	go pw.Close()
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != realKey[:len(realKey)-1] {
		t.Fatalf("at EOF: %q, %v", rest, err)
	}
}

func TestReplacerHookErrorStopsBeforeTheMatch(t *testing.T) {
	errStop := errors.New("stop")
	s := mustSet(t, []pair{pairOf(dummyKey, dummyKey)}, false)
	for _, in := range []string{"before " + dummyKey + " after", strings.Repeat("x", 100000) + dummyKey} {
		got, err := io.ReadAll(s.reader(iotest.HalfReader(strings.NewReader(in)), func(int) error { return errStop }))
		if !errors.Is(err, errStop) {
			t.Fatalf("err = %v, want the hook's", err)
		}
		if string(got) != in[:strings.Index(in, dummyKey)] {
			t.Fatalf("got %d bytes, want exactly the bytes before the match", len(got))
		}
	}
}

func TestReplacerPassesSourceErrors(t *testing.T) {
	boom := errors.New("boom")
	s := mustSet(t, []pair{pairOf(realKey, dummyKey)}, true)
	cut := len("sk-ant-api03-") + tailMin
	r := io.MultiReader(strings.NewReader("ok "+realKey[:cut]), iotest.ErrReader(boom))
	got, err := io.ReadAll(s.reader(r, nil))
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if strings.Contains(string(got), realKey[:cut]) || string(got) != "ok "+dummyKey[:cut] {
		t.Fatalf("a stream cut inside the real value gave %q", got)
	}
}

func TestReplaceSetRejectsEmptyPattern(t *testing.T) {
	if _, err := newReplaceSet([]pair{pairOf("", "x")}); !errors.Is(err, errEmptyPattern) {
		t.Fatalf("err = %v", err)
	}
}

// FuzzReplacer checks the streaming replacer against naiveReplace for any
// patterns, data and read schedule.
func FuzzReplacer(f *testing.F) {
	// A match split at every offset.
	for k := 0; k <= len(dummyKey)+2; k++ {
		f.Add([]byte(dummyKey), []byte("ghp_x"), []byte("zz"), []byte("{\"k\":\""+dummyKey+"\"}"), []byte{byte(k), 255}, false)
	}
	// Overlapping patterns, and one a prefix of another.
	f.Add([]byte("abcd"), []byte("cdef"), []byte("ef"), []byte("xxabcdefxxcdefab"), []byte{0, 1, 2}, false)
	f.Add([]byte("sk-ant-api03-abc"), []byte("sk-ant-api03-abcdef"), []byte("sk-"), []byte("sk-ant-api03-abcdefsk-ant-api03-abcsk-ant-api03-ab"), []byte{3}, true)
	f.Add([]byte("aaaa"), []byte("aa"), []byte("a"), []byte("aaaaaaaaaaa"), []byte{1}, true)
	// Binary data.
	f.Add([]byte{0, 255, 0}, []byte{255, 255}, []byte{0}, []byte{1, 0, 255, 0, 255, 255, 255, 0, 0, 255}, []byte{0}, false)
	f.Add([]byte(realKey), []byte(realGH), []byte("REAL"), bytes.Repeat([]byte(realKey[:30]+realGH), 50), []byte{200, 7, 0, 31}, true)

	f.Fuzz(func(t *testing.T, a, b, c, data, sched []byte, tail bool) {
		var pairs []pair
		for k, from := range [][]byte{a, b, c} {
			if len(from) == 0 || len(from) > 64 {
				continue
			}
			// The third pair changes length; the others keep it.
			n := len(from)
			if k == 2 {
				n += 3
			}
			pairs = append(pairs, pair{from: from, to: bytes.Repeat([]byte{byte('A' + k)}, n), id: k})
		}
		if len(pairs) == 0 {
			return
		}
		// Duplicate froms keep the first pair, as newReplaceSet does.
		var uniq []pair
		for _, p := range pairs {
			dup := false
			for _, u := range uniq {
				dup = dup || bytes.Equal(u.from, p.from)
			}
			if !dup {
				uniq = append(uniq, p)
			}
		}
		s, err := newReplaceSet(pairs)
		if err != nil {
			t.Fatal(err)
		}
		s.redactTail = tail
		want := naiveReplace(uniq, data, tail)
		got, err := io.ReadAll(s.reader(&chunkReader{data: data, sched: sched}, nil))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("streamed %q, want %q", got, want)
		}
		if s.sameLen && len(got) != len(data) {
			t.Fatalf("same-length pairs changed the length: %d → %d", len(data), len(got))
		}
		if whole := s.replaceString(string(data)); whole != string(want) {
			t.Fatalf("replaceString %q, want %q", whole, want)
		}
	})
}

// TestReplacerLargeReads: with reads as large as its buffer (which starts
// small and grows), matches that straddle every read boundary are still
// found, as naiveReplace finds them.
func TestReplacerLargeReads(t *testing.T) {
	pairs := []pair{pairOf(realKey, dummyKey), pairOf(realGH, dummyGH)}
	s := mustSet(t, pairs, true)
	var data []byte
	for i := 0; len(data) < 300<<10; i++ {
		data = append(data, strings.Repeat("x", i%97)...)
		if i%2 == 0 {
			data = append(data, realKey...)
		} else {
			data = append(data, realGH...)
		}
	}
	cut := len("sk-ant-api03-") + tailMin
	data = append(data, realKey[:cut]...) // ends inside a possible match, long enough to redact
	want := naiveReplace(pairs, data, true)
	got, err := io.ReadAll(s.reader(bytes.NewReader(data), nil))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("large reads: output differs from naiveReplace")
	}
	if bytes.Contains(got, []byte(realKey[:cut])) || bytes.Contains(got, []byte(realGH)) {
		t.Fatal("a real value got through")
	}
}
