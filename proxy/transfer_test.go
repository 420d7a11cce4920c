package proxy

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// pattern is n bytes that differ from position to position, so a lost,
// repeated or reordered chunk changes the digest.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>9)
	}
	return b
}

// TestLargeBodiesArriveIntact sends a body of known length each way, larger
// than every buffer on the path, and checks both arrive byte for byte.
func TestLargeBodiesArriveIntact(t *testing.T) {
	const size = 5<<20 + 123
	want := sha256.Sum256(pattern(size))
	w := newWorld(t, func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Length", strconv.Itoa(size))
		_, _ = rw.Write(pattern(size))
	})
	req, _ := http.NewRequest("POST", "https://api.anthropic.com/upload", bytes.NewReader(pattern(size)))
	req.Header.Set("x-api-key", dummyKey)
	res, err := w.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != size || sha256.Sum256(got) != want {
		t.Fatalf("download: got %d bytes, want %d intact", len(got), size)
	}
	s := w.seenRequests()
	if len(s) != 1 || len(s[0].Body) != size || sha256.Sum256([]byte(s[0].Body)) != want {
		t.Fatalf("upload: upstream did not get the %d bytes intact", size)
	}
	if s[0].Header.Get("X-Api-Key") != realKey {
		t.Error("upstream did not get the real key")
	}
}

// TestBurstReusesUpstreamConnections: after a burst of parallel requests,
// a second burst of the same size finds every upstream connection it needs
// in the pool. With too few idle connections kept per host, requests beyond
// that number pay a new upstream handshake every time.
func TestBurstReusesUpstreamConnections(t *testing.T) {
	const n = 80 // more than the 64 cloak once kept
	var mu sync.Mutex
	conns := map[string]bool{} // upstream connections, by the proxy's address
	inFlight := 0
	all := make(chan struct{})
	w := newWorld(t, func(rw http.ResponseWriter, r *http.Request) {
		// Hold each request until n are in flight, so each burst needs n
		// upstream connections at once.
		mu.Lock()
		conns[r.RemoteAddr] = true
		inFlight++
		if inFlight == n {
			close(all)
		}
		wait := all
		mu.Unlock()
		select {
		case <-wait:
		case <-time.After(60 * time.Second): // failsafe on a very busy machine
		}
		_, _ = io.WriteString(rw, "ok")
	})
	c := w.client()
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = n
	burst := func() int {
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("GET", "https://api.anthropic.com/v1/models", nil)
				res, err := c.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}()
		}
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		inFlight = 0
		all = make(chan struct{})
		return len(conns)
	}
	if first := burst(); first != n {
		t.Fatalf("first burst used %d upstream connections, want %d", first, n)
	}
	if both := burst(); both != n {
		t.Fatalf("second burst opened %d new upstream connections, want 0", both-n)
	}
}
