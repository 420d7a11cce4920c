// Command bench measures cloak's proxy side by side with direct access and
// with peer MITM proxies (mitmproxy's mitmdump, squid with ssl-bump), on the
// same loopback work in one run.
//
// Run it with bench/run (which installs the peers and builds everything),
// or by hand:
//
//	go build -o /tmp/cloak . && go run ./bench --cloak /tmp/cloak
//	go run ./bench --smoke --cloak /tmp/cloak   # about ten seconds
//
// It starts a loopback HTTPS upstream (small JSON, 64 KiB POST, event
// streams, big upload and download), then for each round and each target
// runs a load client (this same program, "bench client") that reaches the
// upstream through that target and measures it. cloak is the real binary
// with the client as its command, as a user runs it. Rounds interleave the
// targets, and the table shows the median of the rounds, and the median of
// each round's ratio to (or difference from) direct in the same round.
// Results go to bench/results/ as JSON and Markdown.
//
// Figures are only as quiet as the machine: the client, the upstream and
// the proxy share its cores.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "client" {
		if len(os.Args) != 4 {
			fmt.Fprintln(os.Stderr, "bench: usage: bench client SPEC.json OUT.json")
			os.Exit(2)
		}
		if err := runClient(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "bench client:", err)
			os.Exit(1)
		}
		return
	}
	if err := orchestrate(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench: error:", err)
		os.Exit(1)
	}
}

// bench is one run of the harness: the upstream, the work directory, and
// what every round shares.
type bench struct {
	self     string // this program, which is also the load client
	dir      string
	up       *upstream
	upCAFile string
	rootsDir string // holds only upCAFile, for SSL_CERT_DIR
	// cloakExtraEnv is added to cloak's environment (--cloak-env).
	cloakExtraEnv []string
	keep          bool // keep dir (--keep)
	squidCA       *authority
	real          string // the bench secret, as the upstream expects it
	dummy         string // what the client holds behind mitmproxy and squid
	fresh         [][]string
	allHosts      []string
	plan          plan
	specFile      string
	outFile       string
	logFile       string
}

const knownHost = "api." + benchDomain

func orchestrate(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	smoke := fs.Bool("smoke", false, "a quick check that every target works (about ten seconds): direct and cloak, one short round")
	rounds := fs.Int("rounds", 5, "rounds; each runs every target once, in rotating order")
	only := fs.String("targets", "direct,cloak,mitmproxy,squid", "targets to run, comma-separated (direct is always run)")
	cloakBin := fs.String("cloak", "", "the cloak binary to measure (required)")
	outDir := fs.String("out", "bench/results", "where to write results")
	dur := fs.Duration("duration", 2*time.Second, "length of each load scenario")
	keep := fs.Bool("keep", false, "keep the work directory (logs of cloak, the client and the peers) and say where it is")
	var cloakEnv listFlag
	fs.Var(&cloakEnv, "cloak-env", "add `NAME=VALUE` to cloak's environment (repeatable), e.g. GOGC=50 to try a setting")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cloakBin == "" {
		return errors.New("--cloak is required (build it with: go build -o /tmp/cloak .)")
	}
	abs, err := filepath.Abs(*cloakBin)
	if err != nil {
		return err
	}
	p := fullPlan(*dur)
	names := strings.Split(*only, ",")
	if *smoke {
		p = smokePlan()
		*rounds = 1
		names = []string{"direct", "cloak"}
	}
	all := map[string]target{
		"direct": direct{}, "cloak": cloakTarget{bin: abs},
		"mitmproxy": mitmTarget{}, "squid": squidTarget{},
	}
	var targets []target
	seen := map[string]bool{}
	for _, n := range append([]string{"direct"}, names...) {
		n = strings.TrimSpace(n)
		t, ok := all[n]
		if !ok {
			return fmt.Errorf("--targets: unknown target %q (want direct, cloak, mitmproxy, squid)", n)
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		if err := t.available(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: skipping %s: %v\n", n, err)
			continue
		}
		targets = append(targets, t)
	}

	b, err := newBench(p, *rounds)
	if err != nil {
		return err
	}
	b.cloakExtraEnv = cloakEnv
	b.keep = *keep
	defer b.close()

	var order []string
	for _, t := range targets {
		order = append(order, t.name())
	}
	runs := map[string][]map[string]float64{}
	var records []runRecord
	start := time.Now()
	for r := range *rounds {
		for i := range targets {
			t := targets[(i+r)%len(targets)] // rotate, so no target always goes first
			fmt.Fprintf(os.Stderr, "bench: round %d/%d: %s\n", r+1, *rounds, t.name())
			m, errs := b.runOne(t, r)
			if t.name() == "cloak" {
				for k, v := range b.startup(p.StartupRuns, abs) {
					m[k] = v
				}
			}
			for _, e := range errs {
				fmt.Fprintf(os.Stderr, "bench:   %s: %s\n", t.name(), e)
			}
			runs[t.name()] = append(runs[t.name()], m)
			records = append(records, runRecord{Round: r + 1, Target: t.name(), Metrics: m, Errors: errs})
		}
	}
	table := summarise(order, runs)
	writeTable(os.Stdout, order, table)
	return writeResults(*outDir, result{
		Date:     start.UTC().Format(time.RFC3339),
		Machine:  machine(),
		Command:  strings.Join(os.Args, " "),
		Smoke:    *smoke,
		Rounds:   *rounds,
		Plan:     p,
		Targets:  order,
		Table:    table,
		Runs:     records,
		Duration: time.Since(start).Round(time.Second).String(),
	}, order)
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func fullPlan(d time.Duration) plan {
	return plan{
		Duration: d, MaxRequests: 200000,
		Conc: 32, PostConc: 8, PostSize: 64 << 10, PeakConc: 256,
		SSEWorkers: 4, SSEStreams: 3, SSEEvents: 40, SSEDelay: 10 * time.Millisecond,
		NewConns: 40, Transfer: 100 << 20, TransferLimit: 15 * time.Second, StartupRuns: 15,
	}
}

func smokePlan() plan {
	return plan{
		Duration: 300 * time.Millisecond, MaxRequests: 20000,
		Conc: 32, PostConc: 8, PostSize: 64 << 10, PeakConc: 64,
		SSEWorkers: 2, SSEStreams: 2, SSEEvents: 10, SSEDelay: 10 * time.Millisecond,
		NewConns: 5, Transfer: 8 << 20, TransferLimit: 5 * time.Second, StartupRuns: 3,
	}
}

func newBench(p plan, rounds int) (*bench, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cloak-bench-")
	if err != nil {
		return nil, err
	}
	b := &bench{self: self, dir: dir, plan: p}
	upCA, err := newAuthority("bench upstream CA")
	if err != nil {
		return nil, err
	}
	b.rootsDir = filepath.Join(dir, "roots")
	if err := os.Mkdir(b.rootsDir, 0o755); err != nil {
		return nil, err
	}
	b.upCAFile = filepath.Join(b.rootsDir, "upstream-ca.pem")
	if err := os.WriteFile(b.upCAFile, upCA.certPEM(), 0o644); err != nil {
		return nil, err
	}
	if b.squidCA, err = newAuthority("bench squid CA"); err != nil {
		return nil, err
	}
	b.real = "sk-bench-" + randomHex(24)
	b.dummy = "sk-bench-" + randomHex(24)
	if b.up, err = startUpstream(upCA, b.real); err != nil {
		return nil, err
	}
	b.allHosts = []string{knownHost}
	for r := range rounds {
		var names []string
		for i := range p.NewConns {
			names = append(names, fmt.Sprintf("r%dn%d.%s", r, i, benchDomain))
		}
		b.fresh = append(b.fresh, names)
		b.allHosts = append(b.allHosts, names...)
	}
	b.specFile = filepath.Join(dir, "spec.json")
	b.outFile = filepath.Join(dir, "out.json")
	b.logFile = filepath.Join(dir, "client.log")
	return b, nil
}

func (b *bench) close() {
	_ = b.up.Close()
	if b.keep {
		fmt.Fprintf(os.Stderr, "bench: work directory kept: %s\n", b.dir)
		return
	}
	_ = os.RemoveAll(b.dir)
}

func randomHex(n int) string {
	buf := make([]byte, n/2)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)
}

// env is a small, fixed environment: no proxy variables or secrets from
// the caller's, and a home and XDG dirs inside the work directory, so that
// cloak reads no user secrets.env and writes no user state.
func (b *bench) env(extra ...string) []string {
	return append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + b.dir,
		"XDG_CONFIG_HOME=" + filepath.Join(b.dir, "config"),
		"XDG_STATE_HOME=" + filepath.Join(b.dir, "state"),
		"TMPDIR=" + os.TempDir(),
		"LANG=C.UTF-8",
	}, extra...)
}

func (b *bench) clientCmd(env []string) *exec.Cmd {
	cmd := exec.Command(b.self, "client", b.specFile, b.outFile)
	cmd.Env = env
	return cmd
}

// clientTimeout bounds one client run; mitmproxy buffering 100 MiB both
// ways is the slowest thing here.
const clientTimeout = 10 * time.Minute

// runOne runs one target for one round and returns its figures.
func (b *bench) runOne(t target, round int) (map[string]float64, []string) {
	spec := clientSpec{Target: t.name(), Port: b.up.port(), UpPID: os.Getpid(), Known: knownHost, Fresh: b.fresh[round], Plan: b.plan}
	cmd, stop, err := t.launch(b, &spec)
	if err != nil {
		return map[string]float64{}, []string{"start: " + err.Error()}
	}
	defer stop()
	data, _ := json.Marshal(spec)
	if err := os.WriteFile(b.specFile, data, 0o644); err != nil {
		return map[string]float64{}, []string{err.Error()}
	}
	_ = os.Remove(b.outFile)
	log, err := os.Create(b.logFile)
	if err != nil {
		return map[string]float64{}, []string{err.Error()}
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	b.up.wrongKey.Store(0)
	if err := cmd.Start(); err != nil {
		return map[string]float64{}, []string{"client: " + err.Error()}
	}
	timer := time.AfterFunc(clientTimeout, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	err = cmd.Wait()
	timer.Stop()
	var res clientResult
	data, rerr := os.ReadFile(b.outFile)
	if rerr == nil {
		rerr = json.Unmarshal(data, &res)
	}
	if rerr != nil {
		msg, _ := os.ReadFile(b.logFile)
		return map[string]float64{}, []string{fmt.Sprintf("client: %v %v: %s", err, rerr, strings.TrimSpace(string(msg)))}
	}
	if res.Metrics == nil {
		res.Metrics = map[string]float64{}
	}
	res.Metrics["swap_misses"] = float64(b.up.wrongKey.Load())
	return res.Metrics, res.Errors
}

// runRecord is one target's figures in one round, kept in the JSON.
type runRecord struct {
	Round   int
	Target  string
	Metrics map[string]float64
	Errors  []string `json:",omitempty"`
}

type result struct {
	Date     string
	Machine  map[string]string
	Command  string
	Smoke    bool
	Rounds   int
	Plan     plan
	Targets  []string
	Table    []tableRow
	Runs     []runRecord
	Duration string
}

// writeResults writes the run as JSON and the table as Markdown, both
// under a dated name and as latest.*.
func writeResults(dir string, r result, names []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	stamp := strings.NewReplacer(":", "", "-", "").Replace(r.Date)
	kind := "bench"
	latest := "latest"
	if r.Smoke {
		// A smoke run checks that things work; it does not replace the
		// figures of the last full run.
		kind, latest = "smoke", "latest-smoke"
	}
	var md strings.Builder
	fmt.Fprintf(&md, "Measured %s on %s (%s cores), %d round(s), `%s`.\n\n", r.Date, r.Machine["cpu"], r.Machine["cores"], r.Rounds, r.Command)
	writeTable(&md, names, r.Table)
	for name, body := range map[string][]byte{
		kind + "-" + stamp + ".json": data, latest + ".json": data,
		latest + ".md": []byte(md.String()),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "bench: results in %s (%s.json, %s.md)\n", dir, latest, latest)
	return nil
}

// machine describes where the figures come from.
func machine() map[string]string {
	m := map[string]string{"cores": strconv.Itoa(numCPU())}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m["kernel"] = strings.TrimSpace(string(b))
	}
	m["go"] = goVersion()
	if out, err := exec.Command("mitmdump", "--version").Output(); err == nil {
		m["mitmproxy"] = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	if out, err := exec.Command("squid", "-v").Output(); err == nil {
		m["squid"] = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	return m
}
