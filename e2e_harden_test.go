package main

// Tests that attack cloak from inside the session: the child is hostile and
// runs as the same user as cloak.

import (
	"bufio"
	"encoding/base64"
	"encoding/pem"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// unprivileged is the user the memory tests run cloak as when the tests run
// as root: root holds CAP_SYS_PTRACE, which overrides the non-dumpable flag,
// so only an ordinary user shows the protection an ordinary user gets.
const unprivileged = 65534 // nobody

// newUserSession is newSession for a cloak that runs as an ordinary user:
// the test's own user, or nobody when the tests run as root. Its HOME and
// files belong to that user.
func newUserSession(t *testing.T, secrets map[string]string) *session {
	t.Helper()
	if os.Geteuid() != 0 {
		return newSession(t, nil, secrets)
	}
	// t.TempDir is private to root; this one must be reachable by nobody.
	home, err := os.MkdirTemp("", "cloak-e2e-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	s := &session{t: t, home: home, envFile: filepath.Join(home, "secrets.env"), audit: filepath.Join(home, "audit.log")}
	var b strings.Builder
	for k, v := range secrets {
		b.WriteString(k + "=" + v + "\n")
		s.reals = append(s.reals, v)
	}
	if err := os.WriteFile(s.envFile, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := filepath.WalkDir(home, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, unprivileged, unprivileged)
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(cloakBin), 0o755); err != nil {
		t.Fatal(err)
	}
	s.cred = &syscall.Credential{Uid: unprivileged, Gid: unprivileged, NoSetGroups: false}
	return s
}

// attackMemory is what a hostile child tries against its parent, cloak:
// read its environment, its memory (every readable mapping, through
// /proc/PID/mem) and attach with ptrace. It prints every credential-shaped
// string it finds, so a leak shows up in its output.
const attackMemory = `
import ctypes, os, re, sys
pid = int(sys.argv[1])
pat = re.compile(rb'sk-ant-api03-[A-Za-z0-9_-]{20,}')
def found(b): return sorted(set(m.decode() for m in pat.findall(b)))
try:
    with open('/proc/%d/environ' % pid, 'rb') as f:
        print('environ: read', found(f.read()))
except OSError as e:
    print('environ: denied', e.errno)
maps = []
try:
    with open('/proc/%d/maps' % pid) as f:
        maps = f.read().splitlines()
    print('maps: read', len(maps))
except OSError as e:
    print('maps: denied', e.errno)
try:
    mem = open('/proc/%d/mem' % pid, 'rb', buffering=0)
    hits, n = set(), 0
    for line in maps:
        addr, perms = line.split()[:2]
        if 'r' not in perms:
            continue
        lo, hi = (int(x, 16) for x in addr.split('-'))
        try:
            mem.seek(lo)
            b = mem.read(hi - lo)
            n += len(b)
            hits.update(found(b))
        except (OSError, ValueError, OverflowError):
            pass
    print('mem: read', n, sorted(hits))
except OSError as e:
    print('mem: denied', e.errno)
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_ATTACH, PTRACE_DETACH, WALL = 16, 17, 0x40000000
if libc.ptrace(PTRACE_ATTACH, pid, None, None) == 0:
    os.waitpid(pid, WALL)
    libc.ptrace(PTRACE_DETACH, pid, None, None)
    print('ptrace: attached')
else:
    print('ptrace: denied', ctypes.get_errno())
`

// TestChildCannotReadCloaksMemory: cloak is non-dumpable, so a child of the
// same (ordinary) user can read neither /proc/<cloak>/environ, which holds
// --from-env values from cloak's start, nor /proc/<cloak>/mem, which holds
// every real value, nor attach with ptrace.
func TestChildCannotReadCloaksMemory(t *testing.T) {
	need(t, "python3")
	fileReal := randomReal("sk-ant-api03-", 64)
	envReal := randomReal("sk-ant-api03-", 64)
	s := newUserSession(t, map[string]string{"ANTHROPIC_API_KEY": fileReal})
	s.reals = append(s.reals, envReal)
	s.extraEnv = []string{"ANTHROPIC_AUTH_TOKEN=" + envReal}
	r := s.run([]string{"--from-env", "ANTHROPIC_AUTH_TOKEN"}, "sh", "-c", `id -u; python3 -c "$0" $PPID`, attackMemory)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if uid, _, _ := strings.Cut(r.stdout, "\n"); uid == "0" {
		t.Fatalf("the child ran as root, which overrides the protection under test")
	}
	for _, want := range []string{"environ: denied", "maps: denied", "mem: denied", "ptrace: denied"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("child's attack was not refused: want %q in\n%s", want, r.stdout)
		}
	}
	// s.run has already checked that no real value is in the output.
}

// TestCAPrivateKeyIsNowhereOnDisk: while the child runs, no file in its
// HOME or temp dirs holds a private key, and the session's temp dir holds
// certificates only.
func TestCAPrivateKeyIsNowhereOnDisk(t *testing.T) {
	s, _ := anthropicSession(t, nil)
	fifo := filepath.Join(s.home, "release")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, out, errb := s.start(nil, "sh", "-c", `grep -rl "PRIVATE KEY" "$TMPDIR" "$HOME" "$(dirname "$SSL_CERT_FILE")"; echo "grep=$?"; dirname "$SSL_CERT_FILE"; read x < "$0"`, fifo)
	if l := readLine(t, out, 20*time.Second); l != "grep=1" {
		t.Fatalf("the child found a private key: %q", l)
	}
	dir := readLine(t, out, 5*time.Second)
	if !strings.HasPrefix(dir, filepath.Join(s.home, "tmp")) {
		t.Fatalf("temp dir %q is not under the session's TMPDIR", dir)
	}
	certs := 0
	for _, root := range []string{dir, s.home} {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Type()&fs.ModeNamedPipe != 0 {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Errorf("reading %s: %v", p, err)
				return nil
			}
			if strings.Contains(string(b), "PRIVATE KEY") {
				t.Errorf("%s holds a private key", p)
			}
			if root != dir {
				return nil
			}
			for rest := b; ; {
				var blk *pem.Block
				blk, rest = pem.Decode(rest)
				if blk == nil {
					break
				}
				if blk.Type != "CERTIFICATE" {
					t.Errorf("%s holds a %q PEM block; the temp dir must hold certificates only", p, blk.Type)
				}
				certs++
			}
			return nil
		})
	}
	if certs == 0 {
		t.Fatalf("no certificate found in the session's temp dir %s", dir)
	}
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("go\n")
	f.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("cloak: %v: %s", err, errb)
	}
}

// proxyAddr takes host:port out of a proxy URL the child printed.
func proxyAddr(t *testing.T, proxyURL string) (addr, user, pass string) {
	t.Helper()
	u, err := parseURL(proxyURL)
	if err != nil || u.User == nil {
		t.Fatalf("child printed %q, not a proxy URL with credentials", proxyURL)
	}
	pass, _ = u.User.Password()
	return u.Host, u.User.Username(), pass
}

// rawConnectStatus sends a CONNECT with these credentials to a proxy and
// returns the status line's code.
func rawConnectStatus(t *testing.T, addr, user, pass string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	auth := ""
	if user != "" {
		auth = "Proxy-Authorization: Basic " + b64(user+":"+pass) + "\r\n"
	}
	if _, err := c.Write([]byte("CONNECT unbound.test:443 HTTP/1.1\r\nHost: unbound.test:443\r\n" + auth + "\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the CONNECT answer: %v", err)
	}
	var code int
	if f := strings.Fields(line); len(f) >= 2 {
		_, _ = fmtSscan(f[1], &code)
	}
	return code
}

// TestProxyListensOnLoopbackOnly: the proxy's address is 127.0.0.1, and
// nothing answers on its port at any other address of this machine.
func TestProxyListensOnLoopbackOnly(t *testing.T) {
	s, _ := anthropicSession(t, nil)
	_, out, _ := s.start(nil, "sh", "-c", `echo "$https_proxy"; exec sleep 600`)
	addr, _, _ := proxyAddr(t, readLine(t, out, 20*time.Second))
	host, port, _ := net.SplitHostPort(addr)
	if host != "127.0.0.1" {
		t.Fatalf("proxy listens on %s, want 127.0.0.1", host)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(ipn.IP.String(), port), 2*time.Second); err == nil {
			c.Close()
			t.Errorf("the proxy's port answers on %s", ipn.IP)
		}
	}
}

// TestOtherSessionsCredentialsAreRefused: two cloak runs at once; each
// proxy refuses the other's credentials with 407.
func TestOtherSessionsCredentialsAreRefused(t *testing.T) {
	u := newUpstream(t, nil)
	a, _ := anthropicSession(t, u)
	b, _ := anthropicSession(t, u)
	_, outA, _ := a.start(nil, "sh", "-c", `echo "$https_proxy"; exec sleep 600`)
	_, outB, _ := b.start(nil, "sh", "-c", `echo "$https_proxy"; exec sleep 600`)
	addrA, userA, passA := proxyAddr(t, readLine(t, outA, 20*time.Second))
	addrB, userB, passB := proxyAddr(t, readLine(t, outB, 20*time.Second))
	if passA == passB {
		t.Fatal("two sessions share proxy credentials")
	}
	for _, tc := range []struct {
		name             string
		addr, user, pass string
		want             int
	}{
		{"own credentials", addrA, userA, passA, 200},
		{"B's credentials at A", addrA, userB, passB, 407},
		{"A's credentials at B", addrB, userA, passA, 407},
		{"none", addrA, "", "", 407},
	} {
		if got := rawConnectStatus(t, tc.addr, tc.user, tc.pass); got != tc.want {
			t.Errorf("%s: CONNECT got %d, want %d", tc.name, got, tc.want)
		}
	}
	if !a.auditHas(`"decision":"no-auth"`) || !b.auditHas(`"decision":"no-auth"`) {
		t.Error("the refused CONNECTs are not in the audit logs")
	}
}

// TestBypassingTheProxyCarriesOnlyDummies: a child that sets its own
// NO_PROXY, tells curl to ignore the proxy or drops the proxy variables
// reaches the host directly, and so carries only the dummy: cloak is not a
// firewall, but it never gave the child anything worth sending.
func TestBypassingTheProxyCarriesOnlyDummies(t *testing.T) {
	need(t, "curl")
	u := newUpstream(t, nil)
	s, real := anthropicSession(t, u)
	direct := "--connect-to api.anthropic.com:443:127.0.0.1:" + u.port()
	script := strings.Join([]string{
		`NO_PROXY='*' no_proxy='*' curl -sS -f ` + direct + ` -H "x-api-key: $ANTHROPIC_API_KEY" https://api.anthropic.com/v1/no-proxy-env`,
		`curl -sS -f --noproxy '*' ` + direct + ` -H "x-api-key: $ANTHROPIC_API_KEY" https://api.anthropic.com/v1/noproxy-flag`,
		`env -u https_proxy -u HTTPS_PROXY -u all_proxy -u ALL_PROXY curl -sS -f ` + direct + ` -H "x-api-key: $ANTHROPIC_API_KEY" https://api.anthropic.com/v1/unset`,
	}, " && ")
	r := s.run(nil, "sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	reqs := u.requests()
	if len(reqs) != 3 {
		t.Fatalf("upstream saw %d requests, want 3", len(reqs))
	}
	for _, q := range reqs {
		got := q.Header.Get("X-Api-Key")
		if got == real || !strings.HasPrefix(got, "sk-ant-api03-") {
			t.Errorf("%s: upstream got something other than the dummy", q.URI)
		}
	}
	if s.auditHas(`"path":"/v1/`) {
		t.Error("a request that bypassed the proxy is in the audit log: the test did not bypass it")
	}
}

// TestSIGTERMCleansTempDirAndExitsWithChildStatus: cloak passes SIGTERM on,
// waits for the child, removes its temp dir and exits with the child's
// status.
func TestSIGTERMCleansTempDirAndExitsWithChildStatus(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			s, _ := anthropicSession(t, nil)
			cmd, out, _ := s.start(nil, "sh", "-c", `trap 'echo bye; exit 3' TERM INT; dirname "$SSL_CERT_FILE"; while :; do sleep 1 & wait $!; done`)
			dir := readLine(t, out, 20*time.Second)
			if _, err := os.Stat(filepath.Join(dir, "ca.pem")); err != nil {
				t.Fatalf("temp dir not there while the child runs: %v", err)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if l := readLine(t, out, 20*time.Second); l != "bye" {
				t.Fatalf("child said %q", l)
			}
			_ = cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code != 3 {
				t.Errorf("cloak exited %d, want the child's 3", code)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("temp dir %s left behind after %v (%v)", dir, sig, err)
			}
		})
	}
}

// TestTempDirOfKilledRunIsCleanedNextRun: SIGKILL leaves cloak no chance to
// clean up; the next run removes the dead run's temp dir, and leaves alone
// the temp dir of a run that is still alive.
func TestTempDirOfKilledRunIsCleanedNextRun(t *testing.T) {
	s, _ := anthropicSession(t, nil)
	killed, out, _ := s.start(nil, "sh", "-c", `dirname "$SSL_CERT_FILE"; exec sleep 600`)
	deadDir := readLine(t, out, 20*time.Second)
	_, outLive, _ := s.start(nil, "sh", "-c", `dirname "$SSL_CERT_FILE"; exec sleep 600`)
	liveDir := readLine(t, outLive, 20*time.Second)
	if err := killed.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = killed.Wait()
	if _, err := os.Stat(deadDir); err != nil {
		t.Fatalf("the killed run's temp dir is already gone (%v): nothing to test", err)
	}
	if r := s.run(nil, "true"); r.code != 0 {
		t.Fatalf("next run: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(deadDir); !os.IsNotExist(err) {
		t.Errorf("the killed run's temp dir %s is still there after the next run (%v)", deadDir, err)
	}
	if _, err := os.Stat(filepath.Join(liveDir, "ca.pem")); err != nil {
		t.Errorf("the next run removed a live run's temp dir: %v", err)
	}
}

// TestUnwritableAuditLogStopsBeforeTheChild: an audit log that cannot be
// opened or written (a full disk) is a clear error at start, and the child
// never runs with the log off.
func TestUnwritableAuditLogStopsBeforeTheChild(t *testing.T) {
	for _, tc := range []struct {
		name string
		path func(home string) string
		want string
	}{
		// /dev/full opens fine and fails every write, as a full disk does.
		{"disk full", func(string) string { return "/dev/full" }, "no space left on device"},
		// chmod does not stop root; a regular file as the parent does.
		{"parent is a file", func(home string) string { return filepath.Join(home, "secrets.env", "audit.log") }, "not a directory"},
		{"path is a directory", func(home string) string { return home }, "is a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := anthropicSession(t, nil)
			s.audit = tc.path(s.home)
			marker := filepath.Join(s.home, "child-ran")
			r := s.run(nil, "touch", marker)
			if r.code != 1 || !strings.Contains(r.stderr, "cloak: error: audit log") ||
				!strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "--audit-log") {
				t.Errorf("exit %d stderr %q, want exit 1 and an audit log error saying %q", r.code, r.stderr, tc.want)
			}
			if strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr %q, want the one error line", r.stderr)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("the child ran with the audit log off")
			}
		})
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
