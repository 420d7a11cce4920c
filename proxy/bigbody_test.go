package proxy

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Large bodies through the proxy with the body replacer on, in both
// directions. The test in the normal suite moves 64 MiB each way and
// checks the Go heap stays flat; the benchmarks move 1 GiB (or
// CLOAK_BIG_BYTES) and report the peak heap and the peak RSS of the whole
// test process (proxy, client and upstream together):
//
//	go test ./proxy -run XXX -bench 'Big' -benchtime 1x

// patterned yields n bytes of filler with the value every 1 MiB.
type patterned struct {
	n, off int64
	value  string
}

func (p *patterned) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	const every = 1 << 20
	k := 0
	for k < len(b) && p.off < p.n {
		pos := p.off % every
		var c byte = 'x'
		if pos >= every-int64(len(p.value)) {
			c = p.value[pos-(every-int64(len(p.value)))]
		}
		b[k] = c
		k++
		p.off++
	}
	return k, nil
}

// counter counts a value in what is written to it, across write
// boundaries; total closes it and returns the count.
func counter(value string) (w io.Writer, total func() int64) {
	var n int64
	set, _ := newReplaceSet([]pair{{from: []byte(value), to: []byte(value)}})
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(io.Discard, set.reader(pr, func(int) error { n++; return nil }))
	}()
	return pw, func() int64 { pw.Close(); <-done; return n }
}

// bigWorld is a proxy (GITHUB_TOKEN allowed in bodies) in front of an
// upstream that streams: it counts the real value in what it receives,
// and sends size bytes holding the real value when asked to.
type bigWorld struct {
	proxy    *Proxy
	ca       *testCA
	gotReal  atomic.Int64
	gotBytes atomic.Int64
}

func newBigWorld(t testing.TB, size int64) *bigWorld {
	bw := &bigWorld{ca: newTestCA(t)}
	upCA := newTestCA(t)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			w, total := counter(realGH)
			c, _ := io.Copy(w, r.Body)
			bw.gotBytes.Store(c)
			bw.gotReal.Store(total())
			return
		}
		if r.URL.Query().Get("length") == "known" {
			rw.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		}
		_, _ = io.Copy(rw, &patterned{n: size, value: realGH})
	}))
	up.TLS = &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) { return upCA.leaf(h.ServerName) }}
	up.StartTLS()
	t.Cleanup(up.Close)
	gh, _ := ParseHostPattern("api.github.com")
	p, err := New(Config{
		Secrets:       []Secret{{Name: "GITHUB_TOKEN", Dummy: dummyGH, Real: realGH, Rules: []Rule{{Hosts: []HostPattern{gh}, Places: []string{"body"}}}}},
		Leaf:          bw.ca.leaf,
		UpstreamRoots: upCA.pool(),
		Resolve:       map[string]string{"api.github.com:443": up.Listener.Addr().String()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	bw.proxy = p
	return bw
}

func (bw *bigWorld) client() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:              http.ProxyURL(bw.proxy.URL()),
		TLSClientConfig:    &tls.Config{RootCAs: bw.ca.pool()},
		DisableCompression: true,
	}}
}

// peakHeap samples the Go heap until stop is called, and returns the
// highest HeapInuse seen.
func peakHeap() func() uint64 {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// transfer uploads and downloads size bytes through the proxy and returns
// the peak heap of each.
func transfer(t testing.TB, size int64) (up, down, downKnown uint64) {
	bw := newBigWorld(t, size)
	c := bw.client()
	runtime.GC()

	stop := peakHeap()
	req, _ := http.NewRequest("PUT", "https://api.github.com/upload", &patterned{n: size, value: dummyGH})
	req.ContentLength = size
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	up = stop()
	if res.StatusCode != 200 || bw.gotBytes.Load() != size || bw.gotReal.Load() != size/(1<<20) {
		t.Fatalf("upload: status %d, upstream got %d bytes with %d real values; want %d and %d",
			res.StatusCode, bw.gotBytes.Load(), bw.gotReal.Load(), size, size/(1<<20))
	}

	for _, length := range []string{"chunked", "known"} {
		runtime.GC()
		stop = peakHeap()
		res, err = c.Get("https://api.github.com/download?length=" + length)
		if err != nil {
			t.Fatal(err)
		}
		w, dummies := counter(dummyGH)
		wReal, reals := counter(realGH)
		n, err := io.Copy(io.MultiWriter(w, wReal), res.Body)
		res.Body.Close()
		peak := stop()
		if err != nil || n != size {
			t.Fatalf("download (%s): %d bytes, %v", length, n, err)
		}
		if r, d := reals(), dummies(); r != 0 || d != size/(1<<20) {
			t.Fatalf("download (%s): %d real values and %d dummies reached the child, want 0 and %d", length, r, d, size/(1<<20))
		}
		if length == "known" {
			downKnown = peak
		} else {
			down = peak
		}
	}
	return up, down, downKnown
}

// TestLargeBodiesKeepMemoryFlat: 64 MiB each way must not grow the heap
// by more than a few MiB (whole-body buffering would add 64).
func TestLargeBodiesKeepMemoryFlat(t *testing.T) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	up, down, known := transfer(t, 64<<20)
	for name, peak := range map[string]uint64{"upload": up, "chunked download": down, "known-length download": known} {
		if peak > base+16<<20 {
			t.Errorf("%s: heap peaked at %d MiB over a %d MiB base", name, peak>>20, base>>20)
		}
	}
}

func bigSize() int64 {
	if v, err := strconv.ParseInt(os.Getenv("CLOAK_BIG_BYTES"), 10, 64); err == nil && v > 0 {
		return v
	}
	return 1 << 30
}

// BenchmarkBigBodies moves 1 GiB each way and reports peak heap and RSS.
func BenchmarkBigBodies(b *testing.B) {
	size := bigSize()
	for range b.N {
		start := time.Now()
		up, down, known := transfer(b, size)
		b.ReportMetric(float64(up)/(1<<20), "upload-peak-heap-MiB")
		b.ReportMetric(float64(down)/(1<<20), "chunked-download-peak-heap-MiB")
		b.ReportMetric(float64(known)/(1<<20), "known-download-peak-heap-MiB")
		b.ReportMetric(float64(3*size)/(1<<20)/time.Since(start).Seconds(), "MiB/s")
	}
	if hwm := vmHWM(); hwm != "" {
		b.Logf("peak RSS of the test process (proxy, client and upstream): %s", hwm)
	}
}

// vmHWM is the process's peak resident set size on Linux, or "".
func vmHWM() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
