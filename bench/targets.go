package main

import (
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A target is one way for the load client to reach the upstream. launch
// starts whatever the target needs for one round, fills in the client's
// spec and returns the command that runs the client; stop ends the round.
type target interface {
	name() string
	// available says why the target cannot run here, or nil.
	available() error
	launch(b *bench, spec *clientSpec) (client *exec.Cmd, stop func(), err error)
}

// direct is the physical limit: the client talks to the upstream itself.
type direct struct{}

func (direct) name() string     { return "direct" }
func (direct) available() error { return nil }

func (direct) launch(b *bench, spec *clientSpec) (*exec.Cmd, func(), error) {
	spec.Direct = true
	spec.CAFile = b.upCAFile
	return b.clientCmd(b.env("BENCH_KEY=" + b.real)), func() {}, nil
}

// cloakTarget runs the real binary the way a user does, with the load
// client as the command it protects: `cloak run ... -- bench client ...`.
// cloak's own process is the proxy (the client is excluded from its
// figures), and its launcher, audit log and CA are part of what is measured.
type cloakTarget struct{ bin string }

func (cloakTarget) name() string { return "cloak" }

func (t cloakTarget) available() error {
	if _, err := os.Stat(t.bin); err != nil {
		return fmt.Errorf("cloak binary: %w (build it, or pass --cloak)", err)
	}
	return nil
}

// cloakArgs is the `cloak run` command line up to "--": the bench secret,
// bound to every bench host on the upstream's port, and every host name of
// the round resolved to the loopback upstream.
func (b *bench) cloakArgs(hosts []string) []string {
	port := strconv.Itoa(b.up.port())
	args := []string{"run",
		"--from-env", "BENCH_KEY",
		"--bind", "BENCH_KEY=*." + benchDomain + ":" + port,
		"--audit-log", filepath.Join(b.dir, "cloak-audit.log"),
	}
	for _, h := range hosts {
		args = append(args, "--resolve", h+":"+port+":127.0.0.1")
	}
	return args
}

// cloakEnv is cloak's environment. SSL_CERT_DIR adds the upstream's CA to
// the system roots Go reads, so cloak verifies the upstream as it verifies
// any host: against the system roots, parsed on first use. (--upstream-ca
// would make cloak parse them all before it starts; the startup figures
// show what that costs.)
func (b *bench) cloakEnv() []string {
	return b.env(append([]string{"BENCH_KEY=" + b.real, "SSL_CERT_DIR=" + b.rootsDir}, b.cloakExtraEnv...)...)
}

func (t cloakTarget) launch(b *bench, spec *clientSpec) (*exec.Cmd, func(), error) {
	spec.Proxy = "env"
	spec.CAFile = "env:NODE_EXTRA_CA_CERTS" // cloak's CA alone
	spec.ProxyPID = 0                       // the client's parent is cloak
	args := append(b.cloakArgs(append([]string{spec.Known}, spec.Fresh...)), "--", b.self, "client", b.specFile, b.outFile)
	cmd := exec.Command(t.bin, args...)
	cmd.Env = b.cloakEnv()
	cmd.Dir = b.dir // no stray .env in the working directory
	return cmd, func() {}, nil
}

// mitmTarget is mitmdump from the distribution with a header-swap addon,
// its default options otherwise (it buffers whole bodies unless told not to).
type mitmTarget struct{}

func (mitmTarget) name() string { return "mitmproxy" }

func (mitmTarget) available() error {
	_, err := exec.LookPath("mitmdump")
	return err
}

//go:embed mitm_swap.py
var mitmAddon []byte

func (mitmTarget) launch(b *bench, spec *clientSpec) (*exec.Cmd, func(), error) {
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	conf := filepath.Join(b.dir, "mitmproxy")
	addon := filepath.Join(b.dir, "mitm_swap.py")
	if err := os.WriteFile(addon, mitmAddon, 0o644); err != nil {
		return nil, nil, err
	}
	pass := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	proxy := exec.Command("mitmdump", "-q",
		"--listen-host", "127.0.0.1", "--listen-port", strconv.Itoa(port),
		"--set", "confdir="+conf,
		"--set", "ssl_verify_upstream_trusted_ca="+b.upCAFile,
		"--proxyauth", "bench:"+pass,
		"-s", addon)
	proxy.Env = b.env("BENCH_DUMMY="+b.dummy, "BENCH_REAL="+b.real, "BENCH_DOMAIN="+benchDomain)
	stop, err := startServer(proxy, port, filepath.Join(b.dir, "mitmdump.log"))
	if err != nil {
		return nil, nil, err
	}
	spec.Proxy = "http://bench:" + pass + "@127.0.0.1:" + strconv.Itoa(port)
	spec.CAFile = filepath.Join(conf, "mitmproxy-ca-cert.pem")
	spec.ProxyPID = proxy.Process.Pid
	return b.clientCmd(b.env("BENCH_KEY=" + b.dummy)), stop, nil
}

// freePort asks the system for a free loopback port. Another process could
// take it before the peer binds it; on this machine that is unlikely, and a
// failed start says so.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startServer starts a peer in its own process group, waits until it
// accepts connections on port, and returns the function that stops it
// (and every helper it started).
func startServer(cmd *exec.Cmd, port int, logPath string) (func(), error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited); log.Close() }()
	stop := func() {
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-exited
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			return stop, nil
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("%s exited before listening (see %s)", filepath.Base(cmd.Path), logPath)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("%s did not listen on port %d within a minute (see %s)", filepath.Base(cmd.Path), port, logPath)
		}
	}
}

// errSkip marks a target that cannot run on this machine.
var errSkip = errors.New("not available")

func lookPathAny(names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: none of %s on PATH", errSkip, strings.Join(names, ", "))
}
