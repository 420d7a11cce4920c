package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// clientSpec is what the orchestrator tells one load client: where to send
// its requests and what to measure. It travels as a JSON file, because for
// cloak the client runs as `cloak run`'s child and gets the proxy and the CA
// from its environment, as any agent does.
type clientSpec struct {
	Target   string
	Direct   bool   // straight to the upstream, no proxy
	Proxy    string // proxy URL; "env" takes HTTPS_PROXY from the environment
	CAFile   string // roots to trust; "env:NAME" takes the path from $NAME
	Port     int    // upstream port; every host name is reached on it
	ProxyPID int    // the proxy's process; 0 means the client's parent
	UpPID    int    // the process serving the upstream (the orchestrator)
	Known    string // a host name used throughout the run
	Fresh    []string
	Plan     plan
}

// plan sizes the scenarios. Each load loop stops at its duration or its
// request cap, whichever comes first.
type plan struct {
	Duration    time.Duration // per load scenario
	MaxRequests int           // cap per load scenario
	Conc        int           // small GET throughput
	PostConc    int
	PostSize    int
	PeakConc    int // the memory scenario
	SSEWorkers  int
	SSEStreams  int // per worker, one after another on one client
	SSEEvents   int
	SSEDelay    time.Duration
	NewConns    int   // samples per kind of new connection
	Transfer    int64 // bytes up and down
	// TransferLimit cuts a transfer short (mitmproxy, which buffers whole
	// bodies, moves 100 MiB at a few MiB/s); throughput is then what got
	// through in that time.
	TransferLimit time.Duration
	StartupRuns   int // `cloak run -- true` runs per round
}

// client runs every scenario against one target and records figures by
// name. A scenario that fails leaves its figures out and says why.
type client struct {
	spec    clientSpec
	proxy   *url.URL
	roots   *x509.CertPool
	key     string
	tree    procTree
	metrics map[string]float64
	errs    []string
	stats   *http.Client // straight to the upstream, for its counters
}

func runClient(specPath, outPath string) error {
	var spec clientSpec
	b, err := os.ReadFile(specPath)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("client spec: %w", err)
	}
	c, err := newClient(spec)
	if err != nil {
		return err
	}
	c.run()
	out, err := json.MarshalIndent(clientResult{Target: spec.Target, Metrics: c.metrics, Errors: c.errs}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(outPath, out, 0o644)
}

type clientResult struct {
	Target  string
	Metrics map[string]float64
	Errors  []string `json:",omitempty"`
}

func newClient(spec clientSpec) (*client, error) {
	c := &client{spec: spec, key: os.Getenv("BENCH_KEY"), metrics: map[string]float64{}}
	caFile := spec.CAFile
	if name, ok := cutPrefix(caFile, "env:"); ok {
		caFile = os.Getenv(name)
	}
	roots, err := loadPool(caFile)
	if err != nil {
		return nil, fmt.Errorf("client roots: %w", err)
	}
	c.roots = roots
	c.stats = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		// The counters are the bench's own plumbing, not the work measured:
		// straight to the loopback upstream, whoever its CA is.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		Proxy:           nil,
	}}
	if !spec.Direct {
		raw := spec.Proxy
		if raw == "env" {
			raw = os.Getenv("HTTPS_PROXY")
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("client proxy URL %q: %v", raw, err)
		}
		c.proxy = u
		pid := spec.ProxyPID
		if pid == 0 {
			pid = os.Getppid()
		}
		c.tree = procTree{root: pid, exclude: os.Getpid()}
	}
	return c, nil
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

// transport is one HTTP/1.1 client with keep-alive, through the proxy (or
// straight to the upstream) with full TLS handshakes on new connections.
func (c *client) transport(keepAlive bool) *http.Transport {
	t := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: c.roots},
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     time.Minute,
		DisableKeepAlives:   !keepAlive,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	if c.proxy != nil {
		t.Proxy = http.ProxyURL(c.proxy)
	} else {
		port := strconv.Itoa(c.spec.Port)
		t.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		}
	}
	return t
}

func (c *client) url(host, path string) string {
	return "https://" + net.JoinHostPort(host, strconv.Itoa(c.spec.Port)) + path
}

func (c *client) request(ctx context.Context, method, u string, body io.Reader, size int64) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, method, u, body)
	req.Header.Set(keyHeader, c.key)
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	return req
}

// do sends req and reads the whole answer.
func do(rt http.RoundTripper, req *http.Request) error {
	res, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: status %d", req.Method, req.URL.Path, res.StatusCode)
	}
	return nil
}

func (c *client) fail(scenario string, err error) {
	c.errs = append(c.errs, scenario+": "+err.Error())
}

func (c *client) set(name string, v float64) { c.metrics[name] = v }

// run measures, in this order: idle memory, the big transfers (right after
// idle, so growth is measured against a small heap), latency, throughput,
// event streams, new connections, and memory under many connections.
func (c *client) run() {
	scenarios := []struct {
		name string
		fn   func() error
	}{
		{"idle", c.idle},
		{"upload", c.upload},
		{"download", c.download},
		{"latency", c.latency},
		{"throughput", c.throughput},
		{"post", c.post},
		{"sse", c.sse},
		{"newconn", c.newConns},
		{"peak", c.peak},
	}
	for _, s := range scenarios {
		if err := s.fn(); err != nil {
			c.fail(s.name, err)
		}
	}
	if !c.spec.Direct {
		_, hwm := memory(c.tree.pids())
		c.set("rss_hwm_mib", mibOf(hwm))
	}
}

// idle is the proxy's memory after it served one request and settled.
func (c *client) idle() error {
	if !c.spec.Direct {
		rss, _ := memory(c.tree.pids())
		c.set("rss_start_mib", mibOf(rss))
	}
	t := c.transport(true)
	defer t.CloseIdleConnections()
	if err := do(t, c.request(context.Background(), "GET", c.url(c.spec.Known, "/small"), nil, 0)); err != nil {
		return err
	}
	if c.spec.Direct {
		return nil
	}
	time.Sleep(300 * time.Millisecond)
	m := memoryDetail(c.tree.pids())
	c.set("rss_idle_mib", mibOf(m["VmRSS"]))
	c.set("rss_idle_anon_mib", mibOf(m["RssAnon"]))
	c.set("rss_idle_file_mib", mibOf(m["RssFile"]))
	return nil
}

// errTooManyFailures stops a load loop that only fails.
var errTooManyFailures = errors.New("more than 1% of requests failed")

func (c *client) upload() error {
	t := c.transport(true)
	defer t.CloseIdleConnections()
	var base int64
	var s *rssSampler
	if !c.spec.Direct {
		base, _ = memory(c.tree.pids())
		s = sampleRSS(c.tree)
	}
	n := c.spec.Plan.Transfer
	ctx, cancel := context.WithTimeout(context.Background(), c.spec.Plan.TransferLimit)
	defer cancel()
	body := &counter{r: io.LimitReader(zeros{}, n)}
	cpu0 := c.proxyCPU()
	start := time.Now()
	err := do(t, c.request(ctx, "POST", c.url(c.spec.Known, "/upload"), body, n))
	d := time.Since(start)
	if s != nil {
		peak := s.Stop()
		c.set("upload_rss_growth_mib", mibOf(max(0, peak-base)))
	}
	c.transferCPU("upload", c.proxyCPU()-cpu0, body.n.Load())
	return c.transferred("upload", body.n.Load(), d, err)
}

func (c *client) download() error {
	t := c.transport(true)
	defer t.CloseIdleConnections()
	n := c.spec.Plan.Transfer
	ctx, cancel := context.WithTimeout(context.Background(), c.spec.Plan.TransferLimit)
	defer cancel()
	cpu0 := c.proxyCPU()
	start := time.Now()
	res, err := t.RoundTrip(c.request(ctx, "GET", c.url(c.spec.Known, "/download?size="+strconv.FormatInt(n, 10)), nil, 0))
	if err != nil {
		// A proxy that buffers the whole body may send nothing in time.
		return c.transferred("download", 0, time.Since(start), err)
	}
	defer res.Body.Close()
	got, err := io.Copy(io.Discard, res.Body)
	if err == nil && got != n {
		err = fmt.Errorf("got %d bytes, want %d", got, n)
	}
	d := time.Since(start)
	c.transferCPU("download", c.proxyCPU()-cpu0, got)
	return c.transferred("download", got, d, err)
}

// transferred records a transfer's throughput. One cut short by the time
// limit still counts, at the rate it reached, and says so.
func (c *client) transferred(name string, n int64, d time.Duration, err error) error {
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	c.set(name+"_mbps", float64(n)/mib/d.Seconds())
	if err != nil {
		return fmt.Errorf("cut short after %s, %.0f MiB moved", d.Round(time.Second), float64(n)/mib)
	}
	return nil
}

// proxyCPU is the proxy's CPU time so far (zero when direct).
func (c *client) proxyCPU() time.Duration {
	if c.spec.Direct {
		return 0
	}
	return c.tree.cpu()
}

// transferCPU records the proxy's CPU time per MiB moved, which the
// machine's other load disturbs less than throughput.
func (c *client) transferCPU(name string, cpu time.Duration, n int64) {
	if c.spec.Direct || n == 0 {
		return
	}
	c.set(name+"_cpu_ms_per_mib", ms(cpu)/(float64(n)/mib))
}

// counter counts the bytes read through it.
type counter struct {
	r io.Reader
	n atomic.Int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// latency is one client sending small GETs one after another on one
// keep-alive connection.
func (c *client) latency() error {
	r, err := c.load(1, "GET", "/small", 0)
	if err != nil {
		return err
	}
	c.set("get1_p50_ms", quantile(r.lat, 0.5))
	c.set("get1_p99_ms", quantile(r.lat, 0.99))
	c.set("get1_ttfb_p50_ms", quantile(r.ttfb, 0.5))
	return nil
}

func (c *client) throughput() error {
	r, err := c.load(c.spec.Plan.Conc, "GET", "/small", 0)
	if err != nil {
		return err
	}
	c.set("get32_rps", r.rps)
	c.set("get32_p50_ms", quantile(r.lat, 0.5))
	c.set("get32_p99_ms", quantile(r.lat, 0.99))
	if !c.spec.Direct {
		c.set("get32_cpu_us_per_req", perReq(r.cpu, r.n))
	}
	c.set("get32_client_cpu_us_per_req", perReq(r.clientCPU, r.n))
	c.set("get32_upstream_cpu_us_per_req", perReq(r.upCPU, r.n))
	c.set("get32_upstream_conns_per_1k", float64(r.upConns)*1000/float64(r.n))
	return nil
}

func (c *client) post() error {
	r, err := c.load(c.spec.Plan.PostConc, "POST", "/post", c.spec.Plan.PostSize)
	if err != nil {
		return err
	}
	c.set("post64k_rps", r.rps)
	c.set("post64k_p50_ms", quantile(r.lat, 0.5))
	c.set("post64k_p99_ms", quantile(r.lat, 0.99))
	if !c.spec.Direct {
		c.set("post64k_cpu_us_per_req", perReq(r.cpu, r.n))
	}
	return nil
}

// peak is many clients at once; it records the proxy's largest resident
// set while they run.
func (c *client) peak() error {
	var s *rssSampler
	if !c.spec.Direct {
		s = sampleRSS(c.tree)
	}
	r, err := c.load(c.spec.Plan.PeakConc, "GET", "/small", 0)
	if s != nil {
		c.set("rss_peak256_mib", mibOf(s.Stop()))
	}
	if err != nil {
		return err
	}
	c.set("get256_rps", r.rps)
	c.set("get256_p99_ms", quantile(r.lat, 0.99))
	c.set("get256_upstream_conns_per_1k", float64(r.upConns)*1000/float64(r.n))
	return nil
}

// newConns times CONNECT + TLS + one small GET on a fresh connection, to
// the known host and to a host name the proxy has not seen.
func (c *client) newConns() error {
	for _, kind := range []string{"known", "fresh"} {
		var lat []float64
		for i := range c.spec.Plan.NewConns {
			host := c.spec.Known
			if kind == "fresh" {
				if i >= len(c.spec.Fresh) {
					break
				}
				host = c.spec.Fresh[i]
			}
			t := c.transport(false)
			start := time.Now()
			err := do(t, c.request(context.Background(), "GET", c.url(host, "/small"), nil, 0))
			d := time.Since(start)
			t.CloseIdleConnections()
			if err != nil {
				return fmt.Errorf("%s host %s: %w", kind, host, err)
			}
			lat = append(lat, ms(d))
		}
		c.set("newconn_"+kind+"_p50_ms", quantile(lat, 0.5))
		c.set("newconn_"+kind+"_p90_ms", quantile(lat, 0.9))
	}
	return nil
}

// upstreamStats reads the upstream's counters; zero if it cannot.
func (c *client) upstreamStats() upstreamStats {
	var st upstreamStats
	res, err := c.stats.Get("https://127.0.0.1:" + strconv.Itoa(c.spec.Port) + "/stats")
	if err != nil {
		return st
	}
	defer res.Body.Close()
	_ = json.NewDecoder(res.Body).Decode(&st)
	return st
}

func perReq(d time.Duration, n int) float64 { return float64(d.Microseconds()) / float64(n) }

// loadResult is one load loop's outcome, measured after every worker has
// its connection (so connection setup is not in it).
type loadResult struct {
	n    int
	rps  float64
	lat  []float64     // ms
	ttfb []float64     // ms
	cpu  time.Duration // the proxy's
	// The client's and the upstream's CPU, to tell a proxy that is slow
	// from a machine that is busy.
	clientCPU, upCPU time.Duration
	upConns          int64 // connections the upstream accepted meanwhile
}

// load runs conc workers, each sending requests one after another on its
// own keep-alive connection, until the plan's duration or request cap.
func (c *client) load(conc int, method, path string, size int) (loadResult, error) {
	t := c.transport(true)
	defer t.CloseIdleConnections()
	u := c.url(c.spec.Known, path)
	var body func() (io.Reader, int64)
	if size > 0 {
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = 'p'
		}
		body = func() (io.Reader, int64) { return bytes.NewReader(payload), int64(size) }
	}
	send := func(ctx context.Context, ttfb *time.Duration) error {
		var rd io.Reader
		var n int64
		if body != nil {
			rd, n = body()
		}
		req := c.request(ctx, method, u, rd, n)
		if ttfb != nil {
			start := time.Now()
			req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
				GotFirstResponseByte: func() { *ttfb = time.Since(start) },
			}))
		}
		return do(t, req)
	}

	// Warm up: every worker opens its connection before the clock starts.
	ready := make(chan error, conc)
	for range conc {
		go func() { ready <- send(context.Background(), nil) }()
	}
	for range conc {
		if err := <-ready; err != nil {
			return loadResult{}, fmt.Errorf("warm-up: %w", err)
		}
	}

	p := c.spec.Plan
	perWorker := max(1, p.MaxRequests/conc)
	type workerOut struct {
		lat, ttfb []float64
		fails     int
	}
	outs := make(chan workerOut, conc)
	var cpu0 time.Duration
	if !c.spec.Direct {
		cpu0 = c.tree.cpu()
	}
	st0 := c.upstreamStats()
	self := procTree{root: os.Getpid(), alone: true}
	up := procTree{root: c.spec.UpPID, alone: true}
	selfCPU0, upCPU0 := self.cpu(), up.cpu()
	start := time.Now()
	deadline := start.Add(p.Duration)
	for range conc {
		go func() {
			var o workerOut
			for i := 0; i < perWorker && time.Now().Before(deadline); i++ {
				var ttfb time.Duration
				t0 := time.Now()
				if err := send(context.Background(), &ttfb); err != nil {
					o.fails++
					continue
				}
				o.lat = append(o.lat, ms(time.Since(t0)))
				o.ttfb = append(o.ttfb, ms(ttfb))
			}
			outs <- o
		}()
	}
	var r loadResult
	fails := 0
	for range conc {
		o := <-outs
		r.lat = append(r.lat, o.lat...)
		r.ttfb = append(r.ttfb, o.ttfb...)
		fails += o.fails
	}
	elapsed := time.Since(start)
	if !c.spec.Direct {
		r.cpu = c.tree.cpu() - cpu0
	}
	r.clientCPU, r.upCPU = self.cpu()-selfCPU0, up.cpu()-upCPU0
	st1 := c.upstreamStats()
	r.upConns = st1.Conns - st0.Conns
	r.n = len(r.lat)
	if r.n == 0 || fails*100 > r.n {
		return r, fmt.Errorf("%w (%d of %d)", errTooManyFailures, fails, fails+r.n)
	}
	r.rps = float64(r.n) / elapsed.Seconds()
	return r, nil
}
