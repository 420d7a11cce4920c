package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func anthropicSession(t *testing.T, u *upstream) (*session, string) {
	real := randomReal("sk-ant-api03-", 64)
	return newSession(t, u, map[string]string{"ANTHROPIC_API_KEY": real}), real
}

func TestChildEnvironmentHoldsOnlyTheDummy(t *testing.T) {
	s, real := anthropicSession(t, nil)
	s.extraEnv = []string{"SOME_URL=https://user:" + real + "@example.test/path"}
	r := s.run(nil, "env")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	dummy := envValue(r.stdout, "ANTHROPIC_API_KEY")
	if len(dummy) != len(real) || !strings.HasPrefix(dummy, "sk-ant-api03-") || dummy == real {
		t.Fatalf("child's ANTHROPIC_API_KEY has the wrong shape (len %d)", len(dummy))
	}
	if got := envValue(r.stdout, "SOME_URL"); got != "https://user:"+dummy+"@example.test/path" {
		t.Errorf("real value inside another variable not replaced by the dummy: %q", got)
	}
	for _, v := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		if p := envValue(r.stdout, v); !strings.HasPrefix(p, "http://cloak:") || !strings.Contains(p, "@127.0.0.1:") {
			t.Errorf("%s = %q, want the session proxy with credentials", v, p)
		}
	}
	for _, v := range []string{"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"} {
		if p := envValue(r.stdout, v); filepath.Base(p) != "bundle.pem" {
			t.Errorf("%s = %q, want the combined bundle", v, p)
		}
	}
	if p := envValue(r.stdout, "NODE_EXTRA_CA_CERTS"); filepath.Base(p) != "ca.pem" {
		t.Errorf("NODE_EXTRA_CA_CERTS = %q", p)
	}
	if envValue(r.stdout, "NO_PROXY") != "localhost,127.0.0.1,::1" {
		t.Errorf("NO_PROXY = %q", envValue(r.stdout, "NO_PROXY"))
	}
	if envValue(r.stdout, "CLOAK") != "1" {
		t.Error("CLOAK=1 not set")
	}
	if r.stderr != "" {
		t.Errorf("cloak printed while the child ran: %q", r.stderr)
	}
	// The session's temp dir is gone after the run.
	if p := envValue(r.stdout, "SSL_CERT_FILE"); p != "" {
		if _, err := os.Stat(filepath.Dir(p)); !os.IsNotExist(err) {
			t.Errorf("temp dir %s left behind", filepath.Dir(p))
		}
	}
}

func TestDummyIsStableAcrossRuns(t *testing.T) {
	s, _ := anthropicSession(t, nil)
	first := envValue(s.run(nil, "env").stdout, "ANTHROPIC_API_KEY")
	second := envValue(s.run(nil, "env").stdout, "ANTHROPIC_API_KEY")
	if first == "" || first != second {
		t.Fatalf("dummy changed between runs")
	}
	fi, err := os.Stat(filepath.Join(s.home, "state", "cloak", "dummies.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("dummies file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestCurlSendsRealKeyOnlyUpstream(t *testing.T) {
	need(t, "curl")
	u := newUpstream(t, nil)
	s, real := anthropicSession(t, u)
	r := s.run(nil, "sh", "-c", `curl -sS -f -H "x-api-key: $ANTHROPIC_API_KEY" -d '{}' https://api.anthropic.com/v1/messages && echo "child-key=$ANTHROPIC_API_KEY"`)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	reqs := u.requests()
	if len(reqs) != 1 || reqs[0].Header.Get("X-Api-Key") != real {
		t.Fatalf("upstream did not get the real key")
	}
	if !strings.Contains(r.stdout, `{"ok":true}`) || !strings.Contains(r.stdout, "child-key=sk-ant-api03-") {
		t.Fatalf("child output: %q", r.stdout)
	}
	if !s.auditHas(`"decision":"allowed"`, `"host":"api.anthropic.com:443"`, `"injected":["ANTHROPIC_API_KEY"]`, `"path":"/v1/messages"`) {
		t.Errorf("no audit line for the request:\n%s", strings.Join(s.auditLines(), "\n"))
	}
}

// nodeThroughProxy is a Node client that does what Claude Code's does:
// CONNECT through https_proxy with the credentials in its URL, TLS trusting
// NODE_EXTRA_CA_CERTS, and a header with the key.
const nodeThroughProxy = `
const http = require('http'), https = require('https'), tls = require('tls');
const proxy = new URL(process.env.https_proxy);
const auth = 'Basic ' + Buffer.from(decodeURIComponent(proxy.username) + ':' + decodeURIComponent(proxy.password)).toString('base64');
const req = http.request({host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: 'api.anthropic.com:443',
  headers: {'Proxy-Authorization': auth, Host: 'api.anthropic.com:443'}});
req.on('connect', (res, socket) => {
  if (res.statusCode !== 200) { console.error('CONNECT', res.statusCode); process.exit(2); }
  const r = https.request({host: 'api.anthropic.com', path: '/v1/messages', method: 'POST',
    headers: {'x-api-key': process.env.ANTHROPIC_API_KEY, 'content-type': 'application/json'},
    createConnection: () => tls.connect({socket, servername: 'api.anthropic.com'})}, (resp) => {
      let body = ''; resp.on('data', d => body += d);
      resp.on('end', () => { console.log('status', resp.statusCode, body.trim()); process.exit(0); });
  });
  r.on('error', e => { console.error('request error', e.message); process.exit(3); });
  r.end('{}');
});
req.on('error', e => { console.error('proxy error', e.message); process.exit(4); });
req.end();
`

func TestNodeHTTPSThroughProxy(t *testing.T) {
	need(t, "node")
	u := newUpstream(t, nil)
	s, real := anthropicSession(t, u)
	r := s.run(nil, "node", "-e", nodeThroughProxy)
	if r.code != 0 || !strings.Contains(r.stdout, `status 200 {"ok":true}`) {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if reqs := u.requests(); len(reqs) != 1 || reqs[0].Header.Get("X-Api-Key") != real {
		t.Fatal("upstream did not get the real key from node")
	}
}

func TestDomainFrontingIsRefused(t *testing.T) {
	need(t, "curl")
	u := newUpstream(t, nil)
	s, _ := anthropicSession(t, u)
	r := s.run(nil, "sh", "-c", `curl -sS -H "Host: evil.test" -H "x-api-key: $ANTHROPIC_API_KEY" -w '\nstatus=%{http_code}\n' https://api.anthropic.com/v1/messages`)
	if !strings.Contains(r.stdout, "status=403") || !strings.Contains(r.stdout, "fronting") {
		t.Fatalf("want 403 fronting, got stdout %q stderr %q", r.stdout, r.stderr)
	}
	if len(u.requests()) != 0 {
		t.Fatal("a fronted request reached the upstream")
	}
	if !s.auditHas(`"decision":"fronting"`, `"alert":true`) {
		t.Error("fronting not in the audit log as an alert")
	}
	if !strings.Contains(r.stderr, "refused 1 request") {
		t.Errorf("no end-of-run summary of the refusal on stderr: %q", r.stderr)
	}
}

func TestDummyToUnboundHostIsNotSwapped(t *testing.T) {
	need(t, "curl")
	u := newUpstream(t, nil)
	s, real := anthropicSession(t, u)
	r := s.run(nil, "sh", "-c", `curl -sS -f -H "x-api-key: $ANTHROPIC_API_KEY" https://unbound.test/collect`)
	if r.code != 0 {
		t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	reqs := u.requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream saw %d requests", len(reqs))
	}
	got := reqs[0].Header.Get("X-Api-Key")
	if got == real || !strings.HasPrefix(got, "sk-ant-api03-") {
		t.Fatal("unbound host did not get the dummy")
	}
	if !s.auditHas(`"decision":"passed-through"`, `"host":"unbound.test:443"`) {
		t.Error("pass-through tunnel not in the audit log")
	}
}

func TestDummyToBoundHostOfAnotherSecretTrips(t *testing.T) {
	need(t, "curl")
	u := newUpstream(t, nil)
	s := newSession(t, u, map[string]string{
		"ANTHROPIC_API_KEY": randomReal("sk-ant-api03-", 64),
		"GITHUB_TOKEN":      randomReal("ghp_", 36),
	})
	r := s.run(nil, "sh", "-c", `curl -sS -H "Authorization: token $GITHUB_TOKEN" -w '\nstatus=%{http_code}\n' https://api.anthropic.com/v1/models`)
	if !strings.Contains(r.stdout, "status=403") || !strings.Contains(r.stdout, "GITHUB_TOKEN") {
		t.Fatalf("want 403 naming GITHUB_TOKEN, got %q", r.stdout)
	}
	if len(u.requests()) != 0 {
		t.Fatal("tripwire request reached the upstream")
	}
	if !s.auditHas(`"decision":"tripwire"`, `"alert":true`) {
		t.Error("tripwire not logged as an alert")
	}
}

func TestProxyWithoutCredentialsGets407(t *testing.T) {
	need(t, "curl")
	u := newUpstream(t, nil)
	s, _ := anthropicSession(t, u)
	// The child strips the credentials from the proxy URL.
	r := s.run(nil, "sh", "-c", `p=$(echo "$https_proxy" | sed 's|//.*@|//|'); curl -sS -w '\nstatus=%{http_code}\n' --proxy "$p" https://api.anthropic.com/v1/models; echo "curl=$?"`)
	if !strings.Contains(r.stderr+r.stdout, "407") {
		t.Fatalf("want a 407, got stdout %q stderr %q", r.stdout, r.stderr)
	}
	if len(u.requests()) != 0 {
		t.Fatal("unauthenticated request reached the upstream")
	}
	if !s.auditHas(`"decision":"no-auth"`) {
		t.Error("no-auth not logged")
	}
}

func TestExitStatusIsTheChilds(t *testing.T) {
	s, _ := anthropicSession(t, nil)
	for _, tc := range []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 7", 7},
		{"kill -TERM $$", 128 + 15},
		{"kill -KILL $$", 128 + 9},
	} {
		if r := s.run(nil, "sh", "-c", tc.script); r.code != tc.want {
			t.Errorf("%q: exit %d, want %d (stderr %q)", tc.script, r.code, tc.want, r.stderr)
		}
	}
}

func TestCommandNotFound(t *testing.T) {
	s, _ := anthropicSession(t, nil)
	r := s.run(nil, "no-such-command-here")
	if r.code != 127 || r.stderr != "cloak: error: no-such-command-here: command not found\n" {
		t.Fatalf("exit %d stderr %q", r.code, r.stderr)
	}
}

func TestSignalsAreForwarded(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT} {
		t.Run(sig.String(), func(t *testing.T) {
			s, _ := anthropicSession(t, nil)
			script := `trap 'echo "got signal"; exit 42' TERM INT HUP QUIT; echo ready; while :; do sleep 1 & wait $!; done`
			cmd, out, _ := s.start(nil, "sh", "-c", script)
			if l := readLine(t, out, 20*time.Second); l != "ready" {
				t.Fatalf("child said %q", l)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if l := readLine(t, out, 20*time.Second); l != "got signal" {
				t.Fatalf("child said %q, want it to get the signal", l)
			}
			_ = cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code != 42 {
				t.Fatalf("cloak exited %d, want the child's 42", code)
			}
		})
	}
}

func TestChildDiesWithCloakAndNothingListens(t *testing.T) {
	s, _ := anthropicSession(t, nil)
	cmd, out, _ := s.start(nil, "sh", "-c", `echo "$$ $https_proxy"; while :; do sleep 1; done`)
	fields := strings.Fields(readLine(t, out, 20*time.Second))
	if len(fields) != 2 {
		t.Fatalf("child said %q", fields)
	}
	var pid int
	if _, err := fmtSscan(fields[0], &pid); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatal("the child outlived cloak")
		}
		time.Sleep(10 * time.Millisecond)
	}
	proxyURL := fields[1]
	tr := &http.Transport{Proxy: func(*http.Request) (*urlURL, error) { return parseURL(proxyURL) }}
	if _, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("http://example.test/"); err == nil {
		t.Fatal("the proxy still answers after cloak died")
	}
}

func TestBadSecretsFileStopsBeforeTheChild(t *testing.T) {
	real := randomReal("sk-ant-api03-", 40)
	for _, tc := range []struct {
		name, content, want string
	}{
		{"malformed", "A_KEY=" + real + "\nB_KEY=fine-value-123\nbad line with spaces " + real + "\n", "line 3: malformed"},
		{"empty", "A_KEY=" + real + "\nEMPTY=\n", "line 2: EMPTY is empty"},
		{"bad name", "A_KEY=" + real + "\nBAD-NAME=" + real + "\n", "line 2: malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession(t, nil, nil)
			s.reals = []string{real}
			if err := os.WriteFile(s.envFile, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			marker := filepath.Join(s.home, "child-ran")
			r := s.run(nil, "touch", marker)
			if r.code != 1 || !strings.Contains(r.stderr, s.envFile+" "+tc.want) || strings.Count(r.stderr, "\n") != 1 {
				t.Fatalf("exit %d stderr %q, want one line with %q", r.code, r.stderr, tc.want)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the child ran despite the bad secrets file")
			}
		})
	}
	t.Run("missing file named explicitly", func(t *testing.T) {
		s := newSession(t, nil, nil)
		r := s.run([]string{"--env-file", filepath.Join(s.home, "nope.env")}, "true")
		if r.code != 1 || !strings.Contains(r.stderr, "nope.env") {
			t.Fatalf("exit %d stderr %q", r.code, r.stderr)
		}
	})
}

func TestFromEnvTakesSecretFromCloaksEnvironment(t *testing.T) {
	u := newUpstream(t, nil)
	s := newSession(t, u, nil)
	real := randomReal("sk-ant-api03-", 64)
	s.reals = []string{real}
	s.extraEnv = []string{"ANTHROPIC_API_KEY=" + real}
	r := s.run([]string{"--from-env", "ANTHROPIC_API_KEY"}, "sh", "-c", `env; curl -sS -f -H "x-api-key: $ANTHROPIC_API_KEY" https://api.anthropic.com/v1/messages`)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if d := envValue(r.stdout, "ANTHROPIC_API_KEY"); d == "" || d == real {
		t.Fatal("child did not get a dummy for the --from-env secret")
	}
	if reqs := u.requests(); len(reqs) != 1 || reqs[0].Header.Get("X-Api-Key") != real {
		t.Fatal("upstream did not get the real key")
	}
	r = s.run([]string{"--from-env", "NOT_SET_ANYWHERE"}, "true")
	if r.code != 2 || !strings.Contains(r.stderr, "NOT_SET_ANYWHERE") {
		t.Fatalf("missing --from-env variable: exit %d stderr %q", r.code, r.stderr)
	}
}

func TestUnboundSecretIsAnnouncedOnce(t *testing.T) {
	s := newSession(t, nil, map[string]string{"MY_SERVICE_TOKEN": randomReal("tok_", 30)})
	r := s.run(nil, "true")
	if strings.Count(r.stderr, "MY_SERVICE_TOKEN has no binding") != 1 {
		t.Fatalf("stderr %q", r.stderr)
	}
	r = s.run([]string{"--bind", "MY_SERVICE_TOKEN=api.example.test"}, "true")
	if strings.Contains(r.stderr, "no binding") {
		t.Fatalf("bound secret still announced as unbound: %q", r.stderr)
	}
}

// TestEventStreamArrivesEventByEvent: the upstream holds event 2 until the
// test has seen event 1 printed by the child (curl -N), so a proxy that
// buffers makes the test fail by its deadline.
func TestEventStreamArrivesEventByEvent(t *testing.T) {
	need(t, "curl")
	seenFirst := make(chan struct{})
	u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: message_start\ndata: {\"n\":1}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-seenFirst:
		case <-r.Context().Done():
			return
		case <-time.After(30 * time.Second):
			return // failsafe: the test has failed by now
		}
		io.WriteString(w, "event: message_stop\ndata: {\"n\":2}\n\n")
	})
	s, real := anthropicSession(t, u)
	cmd, out, errb := s.start(nil, "sh", "-c", `curl -sS -N -H "x-api-key: $ANTHROPIC_API_KEY" -d '{"stream":true}' https://api.anthropic.com/v1/messages`)
	if l := readLine(t, out, 20*time.Second); l != "event: message_start" {
		t.Fatalf("first line %q", l)
	}
	readLine(t, out, 5*time.Second)
	close(seenFirst)
	readLine(t, out, 5*time.Second)
	if l := readLine(t, out, 20*time.Second); l != "event: message_stop" {
		t.Fatalf("second event %q", l)
	}
	_ = cmd.Wait()
	if cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("exit %d: %s", cmd.ProcessState.ExitCode(), errb.String())
	}
	if u.requests()[0].Header.Get("X-Api-Key") != real {
		t.Fatal("upstream did not get the real key")
	}
	s.assertNoLeak(errb.String())
}

func TestAuditLogIsPrivateAndJSON(t *testing.T) {
	need(t, "curl")
	u := newUpstream(t, nil)
	s, _ := anthropicSession(t, u)
	s.run(nil, "sh", "-c", `curl -sS -H "x-api-key: $ANTHROPIC_API_KEY" "https://api.anthropic.com/v1/messages?beta=true&key=$ANTHROPIC_API_KEY" >/dev/null; curl -sS -H "x-api-key: $ANTHROPIC_API_KEY" https://api.anthropic.com/v1/models >/dev/null`)
	fi, err := os.Stat(s.audit)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode %v, want 0600", fi.Mode().Perm())
	}
	for _, l := range s.auditLines() {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("audit line not JSON: %q", l)
		}
		if m["session"] == "" || m["time"] == nil {
			t.Errorf("audit line without session or time: %q", l)
		}
	}
	if !s.auditHas(`"path":"/v1/messages?beta=&key="`) {
		t.Error("query values not dropped from the audit path")
	}
}

// TestCloakIsSilentWhileTheChildRuns: martian logs to stderr on a bad
// request; that stderr is the child's terminal, so it must say nothing.
func TestCloakIsSilentWhileTheChildRuns(t *testing.T) {
	need(t, "bash", "curl")
	u := newUpstream(t, nil)
	s, _ := anthropicSession(t, u)
	script := `hp=${https_proxy##*@}; exec 3<>/dev/tcp/${hp%:*}/${hp##*:}; printf 'GARBAGE \x01\x02\r\n\r\n' >&3; cat <&3 >/dev/null; ` +
		`curl -s -o /dev/null https://unbound.test/; curl -s -o /dev/null -H "x-api-key: $ANTHROPIC_API_KEY" https://api.anthropic.com/v1/models; echo done`
	r := s.run(nil, "bash", "-c", script)
	if r.stdout != "done\n" || r.stderr != "" {
		t.Fatalf("stdout %q stderr %q: cloak must print nothing while the child runs", r.stdout, r.stderr)
	}
}

// TestCtrlCReachesTheChildOnce: in a terminal, Ctrl-C goes to the whole
// foreground process group, cloak and child alike. cloak must not forward
// a second copy: Claude Code reads two quick Ctrl-Cs as "exit". script(1)
// gives the run a real pseudo-terminal.
func TestCtrlCReachesTheChildOnce(t *testing.T) {
	need(t, "script")
	s, _ := anthropicSession(t, nil)
	child := filepath.Join(s.home, "child.sh")
	// The loop gives a duplicate signal time to arrive before "total".
	os.WriteFile(child, []byte(`n=0
trap 'n=$((n+1)); echo "INT#$n"' INT
echo ready
i=0
while [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done
echo "total=$n"
`), 0o755)
	line := cloakBin + " " + strings.Join(s.args(nil, "sh", child), " ")
	cmd := exec.Command("script", "-qfec", line, "/dev/null")
	cmd.Env = s.env()
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	out := bufio.NewReader(stdout)
	for l := ""; !strings.Contains(l, "ready"); {
		l = readLine(t, out, 20*time.Second)
	}
	stdin.Write([]byte{3}) // Ctrl-C, through the terminal's line discipline
	var got []string
	for l := ""; !strings.Contains(l, "total="); {
		l = strings.TrimSpace(strings.ReplaceAll(readLine(t, out, 20*time.Second), "^C", ""))
		got = append(got, l)
	}
	if last := got[len(got)-1]; last != "total=1" {
		t.Fatalf("child saw %q, want exactly one SIGINT", got)
	}
	stdin.Close()
	_ = cmd.Wait()
}
