package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"time"
)

// startup times `cloak run -- true` against `true` alone, alternating, and
// returns the median added wall time. cloak starts with one secret and its
// binding, as a user's run does, so it does all a real run does before the
// child starts: CA key, trust bundle (system roots), dummies file, temp dir,
// audit log, proxy. It is timed again with --upstream-ca, with which cloak
// builds a pool of the system roots plus that file before it starts.
func (b *bench) startup(n int, cloak string) map[string]float64 {
	truePath, err := exec.LookPath("true")
	if err != nil {
		return map[string]float64{}
	}
	out := map[string]float64{}
	user := []string{"run", "--from-env", "BENCH_KEY", "--bind", "BENCH_KEY=" + knownHost,
		"--audit-log", filepath.Join(b.dir, "cloak-audit.log")}
	for suffix, args := range map[string][]string{
		"":             slices.Concat(user, []string{"--", truePath}),
		"_upstream_ca": slices.Concat(user, []string{"--upstream-ca", b.upCAFile, "--", truePath}),
	} {
		for k, v := range b.timeStartup(n, cloak, truePath, args) {
			out[k+suffix] = v
		}
	}
	return out
}

func (b *bench) timeStartup(n int, cloak, truePath string, args []string) map[string]float64 {
	plain := func() *exec.Cmd { return exec.Command(truePath) }
	wrapped := func() *exec.Cmd {
		cmd := exec.Command(cloak, args...)
		cmd.Env = b.env("BENCH_KEY=" + b.real) // no SSL_CERT_DIR: as a user runs it
		cmd.Dir = b.dir
		return cmd
	}
	var base, with []float64
	for i := range n + 1 {
		d0, err0 := timeRun(plain())
		d1, err1 := timeRun(wrapped())
		if err0 != nil || err1 != nil {
			return map[string]float64{}
		}
		if i == 0 {
			continue // warm the page cache
		}
		base = append(base, ms(d0))
		with = append(with, ms(d1))
	}
	return map[string]float64{
		"startup_true_ms":  median(base),
		"startup_cloak_ms": median(with),
		"startup_added_ms": median(with) - median(base),
	}
}

func timeRun(cmd *exec.Cmd) (time.Duration, error) {
	start := time.Now()
	err := cmd.Run()
	return time.Since(start), err
}

func numCPU() int { return runtime.NumCPU() }

func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return runtime.Version()
}
