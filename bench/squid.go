package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
)

// squidTarget is squid with ssl-bump (Debian's squid-openssl), bumping every
// CONNECT with an ECDSA CA like cloak's. Its hosts_file maps the bench names
// to the loopback upstream; request_header_replace sets the real key toward
// bench hosts, which is as close as squid comes to a swap.
type squidTarget struct{}

func (squidTarget) name() string { return "squid" }

func (squidTarget) available() error {
	bin, err := lookPathAny("squid")
	if err != nil {
		return err
	}
	out, _ := exec.Command(bin, "-v").CombinedOutput()
	if !bytes.Contains(out, []byte("--with-openssl")) {
		return fmt.Errorf("%w: this squid has no TLS (install squid-openssl)", errSkip)
	}
	if _, err := os.Stat(squidCertgen); err != nil {
		return fmt.Errorf("%w: %s missing", errSkip, squidCertgen)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: squid's bench setup runs it as root (it drops to its own user)", errSkip)
	}
	return nil
}

const squidCertgen = "/usr/lib/squid/security_file_certgen"

var squidConf = template.Must(template.New("squid").Parse(`# written by cloak's bench; one round only
http_port 127.0.0.1:{{.Port}} ssl-bump tls-cert={{.Dir}}/ca.pem tls-key={{.Dir}}/ca.key generate-host-certificates=on dynamic_cert_mem_cache_size=16MB
sslcrtd_program {{.Certgen}} -s {{.Dir}}/ssl_db -M 16MB
sslcrtd_children 5 startup=1 idle=1
acl step1 at_step SslBump1
ssl_bump peek step1
ssl_bump bump all
tls_outgoing_options cafile={{.UpCA}}
hosts_file {{.Dir}}/hosts
dns_nameservers 127.0.0.1
acl bound dstdomain .{{.Domain}}
request_header_access X-Api-Key deny bound
request_header_replace X-Api-Key {{.Real}}
http_access allow all
cache deny all
access_log none
cache_store_log none
netdb_filename none
cache_log {{.Dir}}/cache.log
pid_filename none
coredump_dir {{.Dir}}
cache_effective_user {{.User}}
shutdown_lifetime 0 seconds
pinger_enable off
`))

func (t squidTarget) launch(b *bench, spec *clientSpec) (*exec.Cmd, func(), error) {
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	dir := filepath.Join(b.dir, "squid")
	if err := b.squidFiles(dir, port); err != nil {
		return nil, nil, fmt.Errorf("squid setup: %w", err)
	}
	proxy := exec.Command("squid", "-N", "-f", filepath.Join(dir, "squid.conf"))
	proxy.Env = b.env()
	stop, err := startServer(proxy, port, filepath.Join(b.dir, "squid.log"))
	if err != nil {
		return nil, nil, err
	}
	spec.Proxy = "http://127.0.0.1:" + strconv.Itoa(port)
	spec.CAFile = filepath.Join(dir, "ca.pem")
	spec.ProxyPID = proxy.Process.Pid
	return b.clientCmd(b.env("BENCH_KEY=" + b.dummy)), stop, nil
}

// squidFiles writes squid's config, CA, hosts file and a fresh certificate
// database (so no round finds certificates minted by an earlier one), all
// readable by squid's own user.
func (b *bench) squidFiles(dir string, port int) error {
	u, err := user.Lookup("proxy")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(b.dir, 0o755); err != nil {
		return err
	}
	key, err := b.squidCA.keyPEM()
	if err != nil {
		return err
	}
	var hosts strings.Builder
	for _, h := range b.allHosts {
		fmt.Fprintf(&hosts, "127.0.0.1 %s\n", h)
	}
	var conf bytes.Buffer
	err = squidConf.Execute(&conf, map[string]any{
		"Port": port, "Dir": dir, "Certgen": squidCertgen, "UpCA": b.upCAFile,
		"Domain": benchDomain, "Real": b.real, "User": u.Username,
	})
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"squid.conf": conf.Bytes(),
		"ca.pem":     b.squidCA.certPEM(),
		"ca.key":     key,
		"hosts":      []byte(hosts.String()),
		"cache.log":  nil,
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
	}
	db := filepath.Join(dir, "ssl_db")
	if out, err := exec.Command(squidCertgen, "-c", "-s", db, "-M", "16MB").CombinedOutput(); err != nil {
		return fmt.Errorf("%s -c: %v: %s", squidCertgen, err, out)
	}
	return filepath.Walk(db, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, uid, gid)
	})
}
