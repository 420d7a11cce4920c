package proxy

import (
	"bytes"
	"errors"
	"io"
	"sort"
	"strings"
)

// replaceChunk is how much a replacer reads from its source at a time,
// once a read has filled its first, smaller buffer (replaceFirst): most
// bodies are far smaller than replaceChunk, and a buffer that size for
// every response is garbage the collector pays for.
const (
	replaceChunk = 32 << 10
	replaceFirst = 4 << 10
)

// pair is one replacement: every occurrence of from becomes to. id is the
// caller's tag, given to the hook when the pair matches.
type pair struct {
	from, to []byte
	id       int
}

// replaceSet is an immutable set of pairs, shared by every stream that uses
// it. Matching is leftmost-longest: of the pairs that match, the one that
// starts first wins, and of those starting at the same byte, the longest.
type replaceSet struct {
	pairs   []pair // longest from first, for the tie-break
	maxFrom int
	first   [256][]int // indexes into pairs by first byte of from
	froms   []string   // pairs[i].from as a string, for replaceString
	// sameLen is true when every to is as long as its from, so a body
	// keeps its length.
	sameLen bool
	// redactTail makes a stream that ends inside a possible match replace
	// the bytes held back by the same-length start of to. For real→dummy
	// redaction: an upstream that echoes a real value cut short at the end
	// of a body must not hand the child most of it.
	redactTail bool
}

var errEmptyPattern = errors.New("replace: empty pattern")

// newReplaceSet builds a set. Duplicate froms keep the first pair given.
func newReplaceSet(pairs []pair) (*replaceSet, error) {
	s := &replaceSet{sameLen: true}
	seen := map[string]bool{}
	for _, p := range pairs {
		if len(p.from) == 0 {
			return nil, errEmptyPattern
		}
		if seen[string(p.from)] {
			continue
		}
		seen[string(p.from)] = true
		s.pairs = append(s.pairs, p)
		if len(p.to) != len(p.from) {
			s.sameLen = false
		}
		s.maxFrom = max(s.maxFrom, len(p.from))
	}
	sort.SliceStable(s.pairs, func(i, j int) bool { return len(s.pairs[i].from) > len(s.pairs[j].from) })
	for i, p := range s.pairs {
		s.first[p.from[0]] = append(s.first[p.from[0]], i)
		s.froms = append(s.froms, string(p.from))
	}
	return s, nil
}

func (s *replaceSet) empty() bool { return s == nil || len(s.pairs) == 0 }

// contains reports the id of a pair whose from is in b, or -1.
func (s *replaceSet) contains(b []byte) int {
	if s.empty() {
		return -1
	}
	for _, p := range s.pairs {
		if bytes.Contains(b, p.from) {
			return p.id
		}
	}
	return -1
}

// replaceString applies the set to a whole string: the replacer's own
// decision over all of v at once, as at the end of a stream (header values
// and audit fields go through here on every request, so no stream buffer).
func (s *replaceSet) replaceString(v string) string {
	if s.empty() || !s.touches(v) {
		return v
	}
	r := &replacer{set: s, in: []byte(v), pos: make([]int, len(s.pairs))}
	r.process(true)
	if string(r.out) == v {
		return v
	}
	return string(r.out)
}

// touches reports whether the set may change v: a pair's from is in it,
// or (with redactTail) v ends inside one. Most strings are neither, and
// are returned as they are without a copy.
func (s *replaceSet) touches(v string) bool {
	for _, f := range s.froms {
		if strings.Contains(v, f) {
			return true
		}
	}
	if !s.redactTail {
		return false
	}
	for q := max(0, len(v)-s.maxFrom+1); q < len(v); q++ {
		rest := v[q:]
		for _, j := range s.first[v[q]] {
			if f := s.froms[j]; len(f) > len(rest) && strings.HasPrefix(f, rest) {
				return true
			}
		}
	}
	return false
}

// reader returns r with the set applied as the bytes stream through. hook,
// when not nil, is called with a pair's id before its replacement is
// emitted; an error from it ends the stream with that error, after the
// bytes before the match and never the match itself.
//
// Memory is bounded: one chunk of input, plus at most maxFrom-1 bytes held
// back between reads because they may be the start of a match that the
// next read completes. Everything else is handed on as soon as it is read,
// so an event stream stays event by event.
func (s *replaceSet) reader(r io.Reader, hook func(id int) error) io.Reader {
	if s.empty() && hook == nil {
		return r
	}
	return &replacer{set: s, src: r, hook: hook}
}

// replacer is one stream through a replaceSet.
type replacer struct {
	set  *replaceSet
	src  io.Reader
	hook func(id int) error
	in   []byte // bytes read but not yet decided: a held-back start, then new input
	out  []byte // decided bytes not yet returned
	off  int    // how much of out was returned
	err  error  // from src; io.EOF at the end
	herr error  // from hook: ends the stream
	pos  []int  // per pair: next match start in in, -1 none, -2 unknown
	full bool   // the last read filled in: the next buffer is replaceChunk
}

func (r *replacer) Read(p []byte) (int, error) {
	for r.off == len(r.out) {
		if r.herr != nil {
			return 0, r.herr
		}
		if r.err != nil {
			return 0, r.err
		}
		r.fill()
	}
	n := copy(p, r.out[r.off:])
	r.off += n
	return n, nil
}

// fill reads once from the source and decides what it can.
func (r *replacer) fill() {
	switch {
	case r.in == nil:
		r.in = make([]byte, 0, replaceFirst+r.set.maxFrom)
		r.pos = make([]int, len(r.set.pairs))
	case r.full && cap(r.in) < replaceChunk+r.set.maxFrom:
		r.in = append(make([]byte, 0, replaceChunk+r.set.maxFrom), r.in...)
	}
	r.out, r.off = r.out[:0], 0
	held := len(r.in)
	n, err := r.src.Read(r.in[held:cap(r.in)])
	r.in = r.in[:held+n]
	r.full = len(r.in) == cap(r.in)
	if err != nil {
		r.err = err
	}
	if n == 0 && err == nil {
		return
	}
	r.process(err != nil)
}

// process moves the decided bytes of in to out, leaving in only a tail
// that may still become a match. At the end of the stream (or on a source
// error) nothing is held back.
func (r *replacer) process(atEnd bool) {
	in := r.in
	for j := range r.pos {
		r.pos[j] = -2
	}
	i := 0
	hold := -2 // earliest possible start of a match at or after i; -2 unknown
	for i < len(in) {
		p, j := r.next(in, i)
		if !atEnd {
			if hold != -1 && hold < i {
				hold = r.set.partial(in, i)
			}
			// A longer match may start at or before p: wait for more.
			if hold >= 0 && (p < 0 || hold <= p) {
				r.out = append(r.out, in[i:hold]...)
				r.in = r.in[:copy(r.in, in[hold:])]
				return
			}
		}
		if p < 0 {
			if atEnd && r.set.redactTail {
				if q := r.set.partial(in, i); q >= 0 {
					r.out = append(r.out, in[i:q]...)
					r.out = append(r.out, r.set.tail(in[q:])...)
					break
				}
			}
			r.out = append(r.out, in[i:]...)
			break
		}
		r.out = append(r.out, in[i:p]...)
		pr := &r.set.pairs[j]
		if r.hook != nil {
			if err := r.hook(pr.id); err != nil {
				r.herr = err
				r.in = r.in[:0]
				return
			}
		}
		r.out = append(r.out, pr.to...)
		i = p + len(pr.from)
	}
	r.in = r.in[:0]
}

// next finds the leftmost-longest full match at or after i: its start and
// pair index, or -1.
func (r *replacer) next(in []byte, i int) (int, int) {
	best, bj := -1, -1
	for j := range r.set.pairs {
		p := r.pos[j]
		if p == -2 || (p >= 0 && p < i) {
			k := bytes.Index(in[i:], r.set.pairs[j].from)
			if k >= 0 {
				k += i
			}
			r.pos[j], p = k, k
		}
		// pairs are longest first, so on a tie the earlier j wins.
		if p >= 0 && (best < 0 || p < best) {
			best, bj = p, j
		}
	}
	return best, bj
}

// partial returns the earliest q >= i such that in[q:] is a proper prefix
// of some pair's from, or -1. Only the last maxFrom-1 bytes can be one.
func (s *replaceSet) partial(in []byte, i int) int {
	for q := max(i, len(in)-s.maxFrom+1); q < len(in); q++ {
		rest := in[q:]
		for _, j := range s.first[in[q]] {
			from := s.pairs[j].from
			if len(from) > len(rest) && bytes.HasPrefix(from, rest) {
				return q
			}
		}
	}
	return -1
}

// tailMin is how far past the prefix a real value shares with its dummy
// (such as "sk-ant-api03-") a cut-off tail must reach before it is
// rewritten. Rewriting shorter tails would tell the child whether text it
// chose, echoed at the end of a response (a redirect's Location keeps the
// path or query it was sent), starts a real value, and so give the value
// away one character at a time. Below this a blind guess needs 62^16 tries.
const tailMin = 16

// tail is what bytes that end a stream inside a possible match become
// with redactTail: the start of the longest pair's to they begin, once
// they reach tailMin past the prefix from and to share.
func (s *replaceSet) tail(held []byte) []byte {
	for _, j := range s.first[held[0]] {
		p := s.pairs[j]
		if len(p.from) > len(held) && bytes.HasPrefix(p.from, held) {
			if len(held) < sharedPrefix(p.from, p.to)+tailMin {
				return held
			}
			if len(p.to) >= len(held) {
				return p.to[:len(held)]
			}
			return p.to
		}
	}
	return held
}

// sharedPrefix is the length of the prefix a and b have in common.
func sharedPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// replaceReadCloser is a replacer over a body that must still be closed.
type replaceReadCloser struct {
	io.Reader
	c io.Closer
}

func (b replaceReadCloser) Close() error { return b.c.Close() }
