package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func newCA(t testing.TB) *CA {
	t.Helper()
	c, err := New("cloak session test")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func caPool(c *CA) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(c.Certificate())
	return pool
}

// parsePEMCerts parses every block of b, failing on any non-certificate block.
func parsePEMCerts(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			t.Fatalf("unexpected PEM block %q", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("parsing certificate: %v", err)
		}
		certs = append(certs, cert)
	}
	if rest := bytes.TrimSpace(b); len(rest) != 0 {
		t.Fatalf("trailing non-PEM data: %q", rest)
	}
	return certs
}

// selfSignedPEM makes an unrelated self-signed certificate, standing in for a
// system root.
func selfSignedPEM(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(42),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestCAFields(t *testing.T) {
	c := newCA(t)
	cert := c.Certificate()
	pub, isECDSA := cert.PublicKey.(*ecdsa.PublicKey)

	tests := []struct {
		name string
		ok   bool
	}{
		{"IsCA", cert.IsCA},
		{"BasicConstraintsValid", cert.BasicConstraintsValid},
		{"MaxPathLen is 0", cert.MaxPathLen == 0 && cert.MaxPathLenZero},
		{"KeyUsage is exactly CertSign", cert.KeyUsage == x509.KeyUsageCertSign},
		{"no ExtKeyUsage", len(cert.ExtKeyUsage) == 0},
		{"ECDSA P-256 public key", isECDSA && pub.Curve == elliptic.P256()},
		{"subject CN is the name", cert.Subject.CommonName == "cloak session test"},
		{"subject O is cloak", len(cert.Subject.Organization) == 1 && cert.Subject.Organization[0] == "cloak"},
		{"validity at most 8 days", cert.NotAfter.Sub(cert.NotBefore) <= 8*24*time.Hour},
		{"valid now", time.Now().After(cert.NotBefore) && time.Now().Before(cert.NotAfter)},
		{"serial positive", cert.SerialNumber.Sign() > 0 && cert.SerialNumber.BitLen() <= 128},
		{"SubjectKeyId is SHA-1 sized", len(cert.SubjectKeyId) == 20},
		{"self-issued", bytes.Equal(cert.RawSubject, cert.RawIssuer)},
		{"self-signature verifies", cert.CheckSignatureFrom(cert) == nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ok {
				t.Errorf("CA certificate: %s does not hold", tt.name)
			}
		})
	}
}

func TestNewMakesDistinctCAs(t *testing.T) {
	a, b := newCA(t), newCA(t)
	if a.Certificate().SerialNumber.Cmp(b.Certificate().SerialNumber) == 0 {
		t.Error("two CAs share a serial number")
	}
	if bytes.Equal(a.Certificate().SubjectKeyId, b.Certificate().SubjectKeyId) {
		t.Error("two CAs share a key")
	}
}

func TestLeafVerifiesAgainstCA(t *testing.T) {
	c := newCA(t)
	tests := []struct {
		host    string
		wantDNS []string
		wantIP  net.IP
	}{
		{host: "api.anthropic.com", wantDNS: []string{"api.anthropic.com"}},
		{host: "127.0.0.1", wantIP: net.ParseIP("127.0.0.1")},
		{host: "::1", wantIP: net.ParseIP("::1")},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			tc, err := c.Leaf(tt.host)
			if err != nil {
				t.Fatalf("Leaf(%q): %v", tt.host, err)
			}
			leaf := tc.Leaf
			if leaf == nil {
				t.Fatal("tls.Certificate.Leaf is nil")
			}
			if len(tc.Certificate) != 2 || !bytes.Equal(tc.Certificate[0], leaf.Raw) || !bytes.Equal(tc.Certificate[1], c.Certificate().Raw) {
				t.Error("chain is not [leaf DER, CA DER]")
			}
			key, ok := tc.PrivateKey.(*ecdsa.PrivateKey)
			if !ok || key.Curve != elliptic.P256() || !key.PublicKey.Equal(leaf.PublicKey) {
				t.Error("PrivateKey is not the leaf's ECDSA P-256 key")
			}
			if leaf.Subject.CommonName != tt.host {
				t.Errorf("CN = %q, want %q", leaf.Subject.CommonName, tt.host)
			}
			if fmt.Sprint(leaf.DNSNames) != fmt.Sprint(tt.wantDNS) {
				t.Errorf("DNSNames = %v, want %v", leaf.DNSNames, tt.wantDNS)
			}
			if tt.wantIP != nil && (len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(tt.wantIP)) {
				t.Errorf("IPAddresses = %v, want [%v]", leaf.IPAddresses, tt.wantIP)
			}
			if tt.wantIP == nil && len(leaf.IPAddresses) != 0 {
				t.Errorf("IPAddresses = %v, want none", leaf.IPAddresses)
			}
			if leaf.IsCA || !leaf.BasicConstraintsValid {
				t.Error("leaf is not marked as a non-CA")
			}
			if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
				t.Errorf("KeyUsage = %v, want DigitalSignature only", leaf.KeyUsage)
			}
			if !bytes.Equal(leaf.AuthorityKeyId, c.Certificate().SubjectKeyId) {
				t.Error("AuthorityKeyId is not the CA's SubjectKeyId")
			}
			if leaf.NotAfter.After(c.Certificate().NotAfter) {
				t.Error("leaf outlives the CA")
			}
			_, err = leaf.Verify(x509.VerifyOptions{
				DNSName:   tt.host,
				Roots:     caPool(c),
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestLeafDoesNotVerifyForOtherName(t *testing.T) {
	c := newCA(t)
	tc, err := c.Leaf("api.anthropic.com")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tc.Leaf.Verify(x509.VerifyOptions{
		DNSName:   "evil.com",
		Roots:     caPool(c),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	var hostErr x509.HostnameError
	if !errors.As(err, &hostErr) {
		t.Fatalf("Verify for evil.com: got %v, want a HostnameError", err)
	}
}

func TestLeafDoesNotVerifyAgainstAnotherCA(t *testing.T) {
	c, other := newCA(t), newCA(t)
	tc, err := c.Leaf("api.anthropic.com")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tc.Leaf.Verify(x509.VerifyOptions{DNSName: "api.anthropic.com", Roots: caPool(other)})
	if err == nil {
		t.Fatal("leaf verified against an unrelated CA")
	}
}

func TestLeafRejectsEmptyHost(t *testing.T) {
	c := newCA(t)
	if tc, err := c.Leaf(""); err == nil {
		t.Fatalf("Leaf(\"\") = %v, want an error", tc)
	}
}

func TestLeafIsCached(t *testing.T) {
	c := newCA(t)
	a, err := c.Leaf("example.com")
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Leaf("example.com")
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("second Leaf call returned a different certificate")
	}
	other, err := c.Leaf("example.org")
	if err != nil {
		t.Fatal(err)
	}
	if other == a {
		t.Error("different hosts share a certificate")
	}
}

func TestLeafConcurrentCallsMintOnce(t *testing.T) {
	c := newCA(t)
	const n = 50
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		got   [n]*tls.Certificate
		errs  [n]error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got[i], errs[i] = c.Leaf("concurrent.example")
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if got[i] != got[0] {
			t.Fatalf("call %d returned a different certificate", i)
		}
	}
}

func TestTLSHandshake(t *testing.T) {
	c := newCA(t)
	serverConn, clientConn := net.Pipe()
	defer serverConn.Close()
	defer clientConn.Close()
	deadline := time.Now().Add(10 * time.Second)
	serverConn.SetDeadline(deadline)
	clientConn.SetDeadline(deadline)

	server := tls.Server(serverConn, &tls.Config{
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.Leaf(hello.ServerName)
		},
	})
	client := tls.Client(clientConn, &tls.Config{
		RootCAs:    caPool(c),
		ServerName: "api.anthropic.com",
	})

	serverErr := make(chan error, 1)
	go func() { serverErr <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-serverErr; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	peer := client.ConnectionState().PeerCertificates
	if len(peer) == 0 || peer[0].Subject.CommonName != "api.anthropic.com" {
		t.Fatalf("peer certificates = %v", peer)
	}
}

func TestPEMRoundTrips(t *testing.T) {
	c := newCA(t)
	p := c.PEM()
	if bytes.Contains(p, []byte("PRIVATE KEY")) {
		t.Fatal("PEM contains a private key")
	}
	certs := parsePEMCerts(t, p)
	if len(certs) != 1 {
		t.Fatalf("PEM holds %d certificates, want 1", len(certs))
	}
	if !certs[0].Equal(c.Certificate()) {
		t.Error("PEM does not parse back to the CA certificate")
	}
	p[0] = 'X'
	if bytes.Equal(p, c.PEM()) {
		t.Error("PEM returned the internal slice, not a copy")
	}
}

func TestBundle(t *testing.T) {
	c := newCA(t)
	root := selfSignedPEM(t, "system root")
	extra := selfSignedPEM(t, "extra root")
	noNewline := bytes.TrimRight(root, "\n")

	tests := []struct {
		name   string
		base   []byte
		extra  []byte
		wantCN []string
	}{
		{"base then CA", root, nil, []string{"system root", "cloak session test"}},
		{"base then extra then CA", root, extra, []string{"system root", "extra root", "cloak session test"}},
		{"base without trailing newline", noNewline, nil, []string{"system root", "cloak session test"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := c.Bundle(tt.base, tt.extra)
			if err != nil {
				t.Fatalf("Bundle: %v", err)
			}
			if bytes.Contains(b, []byte("PRIVATE KEY")) {
				t.Fatal("bundle contains a private key")
			}
			certs := parsePEMCerts(t, b)
			var got []string
			for _, cert := range certs {
				got = append(got, cert.Subject.CommonName)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantCN) {
				t.Errorf("bundle CNs = %q, want %q", got, tt.wantCN)
			}
		})
	}
}

func TestBundleRefusesCAAlone(t *testing.T) {
	c := newCA(t)
	tests := []struct {
		name  string
		base  []byte
		extra []byte
	}{
		{"nil base", nil, nil},
		{"whitespace base", []byte(" \n\t\n"), nil},
		{"base with no certificate", []byte("not pem at all\n"), nil},
		{"empty base with extra", nil, selfSignedPEM(t, "extra root")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := c.Bundle(tt.base, tt.extra)
			if !errors.Is(err, ErrNoSystemRoots) {
				t.Fatalf("Bundle = %d bytes, %v; want ErrNoSystemRoots", len(b), err)
			}
			if !strings.Contains(err.Error(), rootPaths[0]) {
				t.Errorf("error %q does not name the files tried", err)
			}
		})
	}
}

func TestSystemRootsFindsDebianBundle(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the Debian bundle path is Linux only")
	}
	p, path, err := SystemRoots()
	if err != nil {
		t.Fatalf("SystemRoots: %v", err)
	}
	if path != "/etc/ssl/certs/ca-certificates.crt" {
		t.Errorf("path = %q, want /etc/ssl/certs/ca-certificates.crt", path)
	}
	if len(parsePEMCerts(t, p)) == 0 {
		t.Error("system roots hold no certificate")
	}
}

func BenchmarkLeafMint(b *testing.B) {
	c := newCA(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := c.Leaf(fmt.Sprintf("h%d.example.com", i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkLeafCached(b *testing.B) {
	c := newCA(b)
	if _, err := c.Leaf("api.anthropic.com"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Leaf("api.anthropic.com"); err != nil {
			b.Fatal(err)
		}
	}
}
