package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"shout/client"
	"shout/endpoint"
	"shout/internal/certs"
	"shout/internal/shouttest"
)

// pki is a test CA and certificates it signed, as PEM files.
type pki struct {
	dir                   string
	ca                    *x509.Certificate
	caKey                 *ecdsa.PrivateKey
	caFile                string
	serverCert, serverKey string
	clientCert, clientKey string
	serial                int64
}

func newPKI(t *testing.T) *pki {
	p := &pki{dir: t.TempDir()}
	var der []byte
	p.ca, der, p.caKey = shouttest.NewCA(t, "shout test CA", 24*time.Hour)
	p.caFile = p.write(t, "ca.pem", "CERTIFICATE", der)
	p.serverCert, p.serverKey = p.issue(t, "server", "shout test server", true)
	p.clientCert, p.clientKey = p.issue(t, "client", "alice", false)
	return p
}

func (p *pki) write(t *testing.T, name, kind string, der []byte) string {
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// issue makes a certificate for cn (a server's for 127.0.0.1) and
// returns its certificate and key files.
func (p *pki) issue(t *testing.T, name, cn string, server bool) (certFile, keyFile string) {
	return p.issueDated(t, name, cn, server, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

// issueDated is issue for a certificate valid from notBefore to notAfter.
func (p *pki) issueDated(t *testing.T, name, cn string, server bool, notBefore, notAfter time.Time) (certFile, keyFile string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(100 + p.serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return p.write(t, name+".pem", "CERTIFICATE", der), p.write(t, name+".key", "PRIVATE KEY", kder)
}

func (p *pki) clientConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	return &tls.Config{RootCAs: pool}
}

// sClient runs openssl s_client against addr with args, sends line and
// returns the first line of output that is not openssl's own, or fails
// the test.
func sClient(t *testing.T, addr, line string, args ...string) (string, error) {
	t.Helper()
	openssl := shouttest.Tool(t, "openssl", "openssl")
	cmd := exec.Command(openssl, append([]string{"s_client", "-connect", addr, "-quiet", "-verify_return_error"}, args...)...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr shouttest.Log
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	io.WriteString(stdin, line)
	got := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		got <- l
	}()
	select {
	case l := <-got:
		if l == "" {
			return "", fmt.Errorf("no reply; openssl said: %s", stderr.String())
		}
		return l, nil
	case <-time.After(bound):
		return "", fmt.Errorf("no reply within %v; openssl said: %s", bound, stderr.String())
	}
}

// openssl's s_client against tls://, TLS 1.2 and 1.3.
func TestServeTLSWithOpenSSL(t *testing.T) {
	p := newPKI(t)
	srv := startServe(t, nil, "tls://127.0.0.1:0", "--cert="+p.serverCert, "--key="+p.serverKey)
	for _, v := range []string{"-tls1_2", "-tls1_3"} {
		got, err := sClient(t, srv.addr("tls"), "hello egon 哈哈哈 straße\n", v, "-CAfile", p.caFile)
		if err != nil || got != "HELLO EGON 哈哈哈 STRASSE\n" {
			t.Errorf("%s: got %q, %v", v, got, err)
		}
	}
	srv.waitLog(`tls="TLS 1.2"`)
	srv.waitLog(`tls="TLS 1.3"`)
}

// mTLS: a client certificate from the CA is served and its subject
// logged; none is refused with the reason logged.
func TestServeMutualTLSWithOpenSSL(t *testing.T) {
	p := newPKI(t)
	srv := startServe(t, nil, "tls://127.0.0.1:0", "--cert="+p.serverCert, "--key="+p.serverKey, "--client-ca="+p.caFile)
	got, err := sClient(t, srv.addr("tls"), "hi\n", "-CAfile", p.caFile, "-cert", p.clientCert, "-key", p.clientKey)
	if err != nil || got != "HI\n" {
		t.Errorf("with a client certificate: got %q, %v", got, err)
	}
	srv.waitLog(`client_cert="CN=alice"`)
	for _, v := range []string{"-tls1_2", "-tls1_3"} {
		if got, err := sClient(t, srv.addr("tls"), "hi\n", v, "-CAfile", p.caFile); err == nil {
			t.Errorf("%s without a client certificate: served, %q", v, got)
		}
	}
	srv.waitLog(`reason="tls handshake"`)
}

// SIGHUP reloads the certificate for new connections without dropping
// open ones; files that make no certificate leave the one in use.
func TestServeSIGHUPReloadsCertificate(t *testing.T) {
	p := newPKI(t)
	srv := startServe(t, nil, "tls://127.0.0.1:0", "--cert="+p.serverCert, "--key="+p.serverKey)
	addr := srv.addr("tls")
	subject := func() string {
		c, err := tls.Dial("tcp", addr, p.clientConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	held, err := tls.Dial("tcp", addr, p.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	// A new certificate in place of the old, then SIGHUP.
	cert, key := p.issue(t, "renewed", "shout renewed server", true)
	for _, f := range [][2]string{{cert, p.serverCert}, {key, p.serverKey}} {
		if err := os.Rename(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	srv.cmd.Process.Signal(syscall.SIGHUP)
	srv.waitLog(`msg="certificate reloaded" subject="CN=shout renewed server"`)
	if got := subject(); got != "shout renewed server" {
		t.Errorf("after SIGHUP a new connection got %q", got)
	}
	if got := exchangeOn(t, held, "still here\n"); got != "STILL HERE\n" {
		t.Errorf("the connection opened before SIGHUP: got %q", got)
	}

	// A broken file: the renewed certificate stays.
	os.WriteFile(p.serverCert, []byte("not a certificate"), 0o600)
	srv.cmd.Process.Signal(syscall.SIGHUP)
	srv.waitLog("certificate not reloaded; keeping the one in use")
	if got := subject(); got != "shout renewed server" {
		t.Errorf("after a bad reload a new connection got %q", got)
	}
}

func exchangeOn(t *testing.T, c net.Conn, line string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(bound))
	io.WriteString(c, line)
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Errorf("reply: %v", err)
	}
	return got
}

// --tls-self-signed makes a certificate for the listener and logs its
// fingerprint, which is the one the client sees.
func TestServeTLSSelfSigned(t *testing.T) {
	srv := startServe(t, nil, "tls://127.0.0.1:0", "--tls-self-signed")
	c, err := tls.Dial("tcp", srv.addr("tls"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	leaf := c.ConnectionState().PeerCertificates[0]
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("the certificate is not for the listener's address: %v", err)
	}
	sum := fmt.Sprintf("% X", sha256.Sum256(leaf.Raw))
	srv.waitLog("sha256=" + strings.ReplaceAll(sum, " ", ":"))
}

// A certificate outside its dates is served, since testing the clients
// that refuse it needs one, and the log warns of it: at start and on each
// reload.
func TestServeWarnsOfCertificateOutOfDate(t *testing.T) {
	p := newPKI(t)
	day := 24 * time.Hour
	cert, key := p.issueDated(t, "old", "shout expired server", true, time.Now().Add(-2*day), time.Now().Add(-day))
	srv := startServe(t, nil, "tls://127.0.0.1:0", "--cert="+cert, "--key="+key)
	srv.waitLog(`level=WARN msg="the certificate has expired: clients that check it will refuse it" not_after=`)
	cfg := p.clientConfig()
	if _, err := tls.Dial("tcp", srv.addr("tls"), cfg); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("a client that checks the certificate: %v; want it refused as expired", err)
	}
	cfg.InsecureSkipVerify = true
	c, err := tls.Dial("tcp", srv.addr("tls"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := exchangeOn(t, c, "served\n"); got != "SERVED\n" {
		t.Errorf("over the expired certificate: got %q", got)
	}
	c.Close()

	future, fkey := p.issueDated(t, "future", "shout future server", true, time.Now().Add(day), time.Now().Add(2*day))
	for _, f := range [][2]string{{future, cert}, {fkey, key}} {
		if err := os.Rename(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	srv.cmd.Process.Signal(syscall.SIGHUP)
	srv.waitLog(`level=WARN msg="the certificate is not valid yet: clients that check it will refuse it" not_before=`)
}

// The dates that make logCertificate warn, and that a certificate in date
// makes no warning.
func TestLogCertificateDates(t *testing.T) {
	p := newPKI(t)
	day := 24 * time.Hour
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cert, key := p.issueDated(t, "dated", "dated", true, from, from.Add(10*day))
	store, err := certs.Load(context.Background(), cert, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		now  time.Time
		want string
	}{
		{from.Add(-time.Second), `level=WARN msg="the certificate is not valid yet: clients that check it will refuse it" not_before=2026-01-01T00:00:00Z`},
		{from, ""},
		{from.Add(10 * day), ""},
		{from.Add(10*day + time.Second), `level=WARN msg="the certificate has expired: clients that check it will refuse it" not_after=2026-01-11T00:00:00Z`},
	} {
		var out strings.Builder
		logCertificate(slog.New(slog.NewTextHandler(&out, nil)), "tls certificate", store, tc.now)
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if !strings.Contains(lines[0], `msg="tls certificate" subject="CN=dated" names=127.0.0.1 not_after=2026-01-11T00:00:00Z sha256=`) {
			t.Errorf("at %v the first line is %q", tc.now, lines[0])
		}
		switch {
		case tc.want == "" && len(lines) != 1:
			t.Errorf("at %v, in date, it logged:\n%s", tc.now, out.String())
		case tc.want != "" && (len(lines) != 2 || !strings.Contains(lines[1], tc.want)):
			t.Errorf("at %v it logged:\n%s\nwant a second line with %s", tc.now, out.String(), tc.want)
		}
	}
}

// A certificate out of date, from an authority given, is refused with
// the flag that accepts it, as curl names its -k: it said crypto/tls's
// "certificate has expired or is not yet valid" alone, where an
// untrusted one was told of --ca and --insecure. --insecure is named in
// place of --ca: named alone, beside the --ca given, it was refused
// ("--ca or --insecure, not both").
func TestConnectCertificateOutOfDateNamesInsecure(t *testing.T) {
	p := newPKI(t)
	day := 24 * time.Hour
	for _, tc := range []struct {
		name              string
		notBefore, notAft time.Time
	}{
		{"expired", time.Now().Add(-2 * day), time.Now().Add(-day)},
		{"not yet valid", time.Now().Add(day), time.Now().Add(2 * day)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert, key := p.issueDated(t, strings.ReplaceAll(tc.name, " ", "-"), "shout "+tc.name+" server", true, tc.notBefore, tc.notAft)
			srv := startServe(t, nil, "tls://127.0.0.1:0", "--cert="+cert, "--key="+key)
			addr := "tls://" + srv.addr("tls")
			const want = "x509: certificate has expired or is not yet valid: current time "
			const hint = " (--insecure in place of --ca accepts it, to try things out)\n"
			for _, args := range [][]string{
				{"connect", "--ca", p.caFile, addr},
				{"bench", "--ca", p.caFile, "--duration", "1ms", "--conns", "1", addr},
			} {
				var stdout, stderr bytes.Buffer
				code := run(context.Background(), args, strings.NewReader("hi\n"), &stdout, &stderr)
				got := stderr.String()
				if code != 1 || !strings.Contains(got, want) || !strings.HasSuffix(got, hint) {
					t.Errorf("shout %s: status %d, stderr %q; want 1, %q and, last, %q", args[0], code, got, want, hint)
				}
			}
		})
	}
}

// Usage errors for the TLS and PROXY flags: status 2 and one line.
func TestServeTLSFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tls://127.0.0.1:0"}, "a tls:// address needs --cert and --key, or --tls-self-signed"},
		{[]string{"127.0.0.1:0", "--tls-self-signed"}, "are for tls:// addresses, and there is none"},
		{[]string{"tls://127.0.0.1:0", "--cert", "x.pem"}, "--cert and --key go together"},
		{[]string{"127.0.0.1:0", "--proxy-from", "10.0.0.0/8"}, "--proxy-from needs --proxy-protocol"},
		// It was taken, and did nothing: datagrams and Unix sockets never carry a header.
		{[]string{"udp://127.0.0.1:0", "--proxy-protocol"}, "--proxy-protocol is for TCP and tls:// addresses, and there is none"},
		{[]string{"127.0.0.1:0", "--proxy-protocol", "--proxy-from", "ten"}, `--proxy-from: "ten" is not an address or a CIDR range`},
		// An IPv6 address in brackets, as it is written with a port, was
		// "not an address", with an IPv4 range for example.
		{[]string{"127.0.0.1:0", "--proxy-protocol", "--proxy-from", "[::1]"}, `--proxy-from: "[::1]": an address here has no brackets: ::1`},
		{[]string{"127.0.0.1:0", "--proxy-protocol", "--proxy-from", "[fd00::]/8"}, `--proxy-from: "[fd00::]/8": an address here has no brackets: fd00::/8`},
		// The balancer's address and port, as its own config or a log
		// line gives it, was "not an address", not said to have a port.
		{[]string{"127.0.0.1:0", "--proxy-protocol", "--proxy-from", "[::1]:80"}, `--proxy-from: "[::1]:80": a source here has no port (it may send from any): ::1`},
		{[]string{"127.0.0.1:0", "--proxy-protocol", "--proxy-from", "127.0.0.1:8080"}, `--proxy-from: "127.0.0.1:8080": a source here has no port (it may send from any): 127.0.0.1`},
		// A zone may hold any byte: the hint quotes what a terminal would
		// not show as it is (ESC, here).
		{[]string{"127.0.0.1:0", "--proxy-protocol", "--proxy-from", "[fe80::1%\x1b[2J]"}, `--proxy-from: "[fe80::1%\x1b[2J]": an address here has no brackets: "fe80::1%\x1b[2J"`},
		// Files that are not there are bad flag values, as shout connect's --ca is.
		{[]string{"tls://127.0.0.1:0", "--cert", "/nonexistent/c.pem", "--key", "/nonexistent/k.pem"}, "open /nonexistent/c.pem: no such file"},
		{[]string{"tls://127.0.0.1:0", "--tls-self-signed", "--client-ca", "/nonexistent/ca.pem"}, "--client-ca: open /nonexistent/ca.pem: no such file"},
	} {
		out, err := exec.Command("shout", append([]string{"serve"}, tc.args...)...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("serve %v: %v, %q; want status 2 and %q", tc.args, err, out, tc.want)
		}
	}
}

// --proxy-protocol with no source trusted to send a header is a usage
// error that says what to add: it served, with a warning in the log, a
// listener that could only refuse every header it was asked to read. (In
// process: on a build without the check, shout serve serves on.)
func TestServeProxyProtocolNeedsProxyFrom(t *testing.T) {
	const want = "--proxy-protocol needs --proxy-from, the balancers trusted to send a PROXY header (--proxy-from 127.0.0.1, or a CIDR range): with none, every header is refused"
	for _, from := range [][]string{nil, {}} {
		cmd := &serveCmd{ProxyProtocol: true, ProxyFrom: from, HandshakeTimeout: time.Second}
		_, _, err := cmd.listenOptions(context.Background(), []endpoint.Endpoint{{Network: "tcp", Address: "127.0.0.1:0"}})
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 || err.Error() != want {
			t.Errorf("--proxy-protocol, --proxy-from %q: %v; want the usage error %q", from, err, want)
		}
	}
	cmd := &serveCmd{ProxyProtocol: true, ProxyFrom: []string{"127.0.0.1"}, HandshakeTimeout: time.Second}
	if _, _, err := cmd.listenOptions(context.Background(), []endpoint.Endpoint{{Network: "tcp", Address: "127.0.0.1:0"}}); err != nil {
		t.Errorf("--proxy-protocol --proxy-from 127.0.0.1: %v", err)
	}
}

// SIGHUP with no certificate to reload is logged, not fatal.
func TestServeSIGHUPWithoutTLS(t *testing.T) {
	srv := startServe(t, nil, "127.0.0.1:0")
	srv.cmd.Process.Signal(syscall.SIGHUP)
	srv.waitLog("SIGHUP: no certificate files to reload")
	if got := exchange(t, "tcp", srv.addr("tcp"), "still\n"); got != "STILL\n" {
		t.Errorf("after SIGHUP: got %q", got)
	}
}

// haproxyFrontends listens on n ports of 127.0.0.1 for HAProxy, which
// takes each as a frontend's inherited socket: the bind lines (fd@3 on)
// go in its configuration, the files in its ExtraFiles, to be closed
// once it has started. HAProxy cannot say which port it took, and a port
// found free and let go before it bound it could be taken meanwhile by
// any connection from 127.0.0.1 (the other tests' and packages' make
// thousands); it then failed to start, "cannot bind socket (Address
// already in use)".
func haproxyFrontends(t *testing.T, n int) (binds, addrs []string, files []*os.File) {
	t.Helper()
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f, err := ln.(*net.TCPListener).File()
		ln.Close() // the socket stays open, in f
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		binds = append(binds, fmt.Sprintf("fd@%d", 3+i))
		addrs = append(addrs, ln.Addr().String())
		files = append(files, f)
	}
	return binds, addrs, files
}

// startHAProxy runs haproxy -db on the configuration cfg, with files as
// its descriptors from 3 on, its output in log, until the test ends.
func startHAProxy(t *testing.T, haproxy, cfg string, files []*os.File, log *shouttest.Log) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(haproxy, "-db", "-f", file)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.ExtraFiles = files
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for _, f := range files { // HAProxy's now
		f.Close()
	}
}

// shout behind a real HAProxy that sends PROXY v1 and v2: the log shows
// the client's own address, and a connection that skips HAProxy from
// HAProxy's address, with no header, is refused.
func TestServeBehindHAProxy(t *testing.T) {
	haproxy := shouttest.Tool(t, "haproxy", "haproxy")
	srv := startServe(t, nil, "tcp://127.0.0.1:0", "--proxy-protocol", "--proxy-from=127.0.0.1/32")
	binds, addrs, files := haproxyFrontends(t, 2)
	cfg := fmt.Sprintf(`defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend v1
  bind %s
  default_backend v1
backend v1
  server shout %s send-proxy
frontend v2
  bind %s
  default_backend v2
backend v2
  server shout %s send-proxy-v2
`, binds[0], srv.addr("tcp"), binds[1], srv.addr("tcp"))
	var out shouttest.Log
	startHAProxy(t, haproxy, cfg, files, &out)

	for i, addr := range addrs {
		src := fmt.Sprintf("127.0.0.%d", 5+i)
		c := dialFrom(t, src, addr, &out)
		if got := exchangeOn(t, c, "behind haproxy\n"); got != "BEHIND HAPROXY\n" {
			t.Errorf("via HAProxy (v%d): got %q", i+1, got)
		}
		srv.waitLog(fmt.Sprintf("msg=open remote=%s:%d", src, c.LocalAddr().(*net.TCPAddr).Port))
		c.Close()
	}
	// Skipping HAProxy from its own, trusted, address: no header, refused.
	c := dialFrom(t, "127.0.0.1", srv.addr("tcp"), &out)
	defer c.Close()
	io.WriteString(c, "sneaky\n")
	c.SetReadDeadline(time.Now().Add(bound))
	if n, err := c.Read(make([]byte, 16)); err == nil {
		t.Errorf("a direct connection with no header was answered (%d bytes)", n)
	}
	srv.waitLog(`reason="proxy header" err="no PROXY header from a trusted source: it sent \"sneaky\\n\""`)
}

// dialFrom connects from src to addr. (HAProxy's frontends listen from
// before it starts: see haproxyFrontends.)
func dialFrom(t *testing.T, src, addr string, log *shouttest.Log) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: bound}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("connect %s from %s: %v\n%s", addr, src, err, log.String())
	}
	return c
}

// --reuse-port: a second shout listens on the port of a first that is
// still serving; the first stops gracefully, answering the connection it
// holds, and the second serves what comes next. Without the flag the
// second is refused.
func TestServeReusePort(t *testing.T) {
	old := startServe(t, nil, "127.0.0.1:0", "--reuse-port")
	addr := old.addr("tcp")
	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if got := exchangeOn(t, held, "before\n"); got != "BEFORE\n" {
		t.Fatalf("got %q", got)
	}
	out, err := exec.Command("shout", "serve", addr).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "address already in use") {
		t.Errorf("without --reuse-port a second server: %v, %s", err, out)
	}
	next := startServe(t, nil, addr, "--reuse-port")
	// Sent before the stop, answered during it.
	io.WriteString(held, "during the stop\n")
	old.cmd.Process.Signal(syscall.SIGTERM)
	held.SetDeadline(time.Now().Add(bound))
	if got, err := io.ReadAll(held); string(got) != "DURING THE STOP\n" {
		t.Errorf("the connection held by the old server: got %q, %v; want the reply, then end of file", got, err)
	}
	held.Close()
	if code := old.wait(); code != 0 {
		t.Errorf("the old server exited %d", code)
	}
	for _, network := range []string{"tcp", "udp"} {
		if got := exchange(t, network, next.addr(network), "after\n"); got != "AFTER\n" {
			t.Errorf("%s after the old server stopped: got %q", network, got)
		}
	}
}

// shout connect and shout bench over TLS against shout serve, with a CA
// and with mTLS; and the handshakes that failed, counted by kind.
func TestConnectAndBenchOverTLS(t *testing.T) {
	p := newPKI(t)
	srv := startServe(t, nil, "tls://127.0.0.1:0", "--cert="+p.serverCert, "--key="+p.serverKey,
		"--client-ca="+p.caFile, "--admin=127.0.0.1:0")
	addr := "tls://" + srv.addr("tls")
	mtls := []string{"--ca", p.caFile, "--cert", p.clientCert, "--key", p.clientKey}

	cmd := exec.Command("shout", append([]string{"connect", addr}, mtls...)...)
	cmd.Stdin = strings.NewReader("hello egon 哈哈哈\nstraße\n")
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "HELLO EGON 哈哈哈\nSTRASSE\n" {
		t.Errorf("connect: %v, %q", err, out)
	}
	out, err = exec.Command("shout", append([]string{"bench", addr, "--conns", "4", "--duration", "1s", "--warmup", "0", "--churn"}, mtls...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "each a TLS handshake") || !strings.Contains(string(out), "every reply checked: all right") {
		t.Errorf("bench --churn: %v\n%s", err, out)
	}

	// Without a client certificate, and with no CA for the server's: the
	// server's log, and the client's hint, name the flags (the libraries'
	// words name their fields, Options.TLS.ClientAuth and TLSOptions.CA).
	cmd = exec.Command("shout", "connect", addr, "--ca", p.caFile)
	cmd.Stdin = strings.NewReader("hi\n")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("connect without a client certificate: served, %q", out)
	}
	srv.waitLog(`err="the client sent no certificate, and --client-ca requires one"`)
	hint := "certificate signed by unknown authority (pass the authority that signed it with --ca FILE, or --insecure to try things out)\n"
	cmd = exec.Command("shout", "connect", addr)
	cmd.Stdin = strings.NewReader("hi\n")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.HasSuffix(string(out), hint) {
		t.Errorf("connect with no CA for the server's certificate: %v, %q; want it to end %q", err, out, hint)
	}
	// Both failed handshakes are counted, at the server, as tls: by the
	// time the log has told of the second (on a line of its own, or held
	// back to a second after the first's), as the metrics are told of
	// an event first.
	if _, ok := srv.log.WaitForAny(bound, `msg="TLS handshake failed" reason="tls handshake" total=2`,
		`reason="tls handshake" err="the client does not trust this server's certificate (bad certificate)" total=2`); !ok {
		t.Fatalf("shout serve did not log the second failed handshake within %v:\n%s", bound, srv.logText())
	}
	_, body := httpGet(t, adminOf(srv)+"metrics")
	if !strings.Contains(body, `shout_handshake_failures_total{reason="tls"} 2`) {
		t.Errorf("/metrics does not count 2 tls handshake failures:\n%s", grepLines(body, "handshake"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Plain text sent to a TLS server gets no byte back, only a close, and
// connect said no more than that: "closed the connection with 1 of 1
// lines unanswered". It now says what such silence may mean, the other
// way round from a tls:// client's "the server does not speak TLS".
func TestConnectPlainToTLSServerSaysTry(t *testing.T) {
	srv := startServe(t, nil, "tls://127.0.0.1:0", "--tls-self-signed")
	addr := srv.addr("tls")
	cmd := exec.Command("shout", "connect", addr)
	cmd.Stdin = strings.NewReader("hello\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	want := "shout: " + addr + " closed the connection with 1 of 1 lines unanswered; nothing came back, as from a TLS server sent plain text (if it serves TLS, connect to tls://" + addr + "), a server at its connection limit or waiting for a PROXY header, or a proxy with no server up behind it\n"
	if code := exitCode(err); code != 1 || stdout.Len() > 0 || stderr.String() != want {
		t.Errorf("status %d, stdout %q, stderr %q; want 1, nothing, %q", code, stdout.String(), stderr.String(), want)
	}
}

// A plain server that closes on lines without a byte back was said to be
// a TLS server or one at its connection limit, and a TLS server that
// closes on the hello was said to close, no more; connect's users poke
// servers through balancers, and behind a balancer with no server up
// (HAProxy closes so in mode tcp), or a server that wants a PROXY header
// (shout's --proxy-protocol, dialled past its balancer), the hint sent
// them looking for TLS, and the TLS client said nothing of why.
func TestConnectSilentCloseNamesProxies(t *testing.T) {
	// A balancer whose only server is down: it takes the line, finds no
	// server to pass it to, and closes.
	backend := shouttest.Refusing(t)
	balancer := shouttest.StreamServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		bufio.NewReader(c).ReadString('\n')
		if b, err := net.DialTimeout("tcp", backend, 10*time.Second); err == nil {
			b.Close()
		}
		c.Close()
	})
	proxied := startServe(t, nil, "tcp://127.0.0.1:0", "tls://127.0.0.1:0", "--tls-self-signed", "--proxy-protocol", "--proxy-from", "127.0.0.1")
	const plain = " closed the connection with 1 of 1 lines unanswered; nothing came back, as from "
	for _, tc := range []struct{ name, addr, prefix, want string }{
		{"balancer with no server", balancer, balancer + plain, "a proxy with no server up behind it"},
		{"PROXY protocol", proxied.addr("tcp"), proxied.addr("tcp") + plain, "waiting for a PROXY header"},
		{"PROXY protocol, TLS", "tls://" + proxied.addr("tls"), "tls handshake with " + proxied.addr("tls") + ": the server closed the connection before it answered the TLS hello (", "waiting for a PROXY header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"connect", tc.addr}
			if strings.HasPrefix(tc.addr, "tls://") {
				args = append(args, "--insecure")
			}
			cmd := exec.Command("shout", args...)
			cmd.Stdin = strings.NewReader("hello\n")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			prefix := "shout: " + tc.prefix
			if code := exitCode(err); code != 1 || !strings.HasPrefix(stderr.String(), prefix) || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("status %d, stderr %q; want 1, %q... naming %q", code, stderr.String(), prefix, tc.want)
			}
		})
	}
}

// A TLS server built on OpenSSL (Python's ssl, openssl s_server) sent
// fewer bytes of plain text than a record's header ("hi\n"), then end of
// file, answers with an alert and closes: seven bytes of no meaning came
// back (^U^C^C^@^B^B2 on a terminal), and connect said no more than "closed
// the connection with 1 of 1 lines unanswered".
func TestConnectPlainToTLSServerAlertSaysTry(t *testing.T) {
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, c)                 // to the client's end of file
		c.Write([]byte{21, 3, 3, 0, 2, 2, 50}) // fatal alert: decode_error
		c.(*net.TCPConn).CloseWrite()          // (and reads on: no reset)
	})
	cmd := exec.Command("shout", "connect", addr)
	cmd.Stdin = strings.NewReader("hi\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	want := "shout: " + addr + " closed the connection with 1 of 1 lines unanswered; what came back is a TLS alert: it speaks TLS (connect to tls://" + addr + ")\n"
	if code := exitCode(err); code != 1 || stdout.String() != "\x15\x03\x03\x00\x02\x022" || stderr.String() != want {
		t.Errorf("status %d, stdout %q, stderr %q; want 1, the alert's bytes unchanged, %q", code, stdout.String(), stderr.String(), want)
	}
}

// Input with no newline at its end (printf hi, the README's own example
// of plain text to a TLS port) has no line to count unanswered: a server
// that closed on it with nothing back, or with a TLS alert alone (openssl
// s_server, HAProxy's ssl frontend on OpenSSL), left connect silent, with
// status 0, as if it had been answered.
func TestConnectNoNewlineClosedUnanswered(t *testing.T) {
	silent := shouttest.StreamServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, c)
		c.(*net.TCPConn).CloseWrite()
	})
	alert := shouttest.StreamServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, c)
		c.Write([]byte{21, 3, 3, 0, 2, 2, 50}) // fatal alert: decode_error
		c.(*net.TCPConn).CloseWrite()
	})
	for _, tc := range []struct{ name, addr, want string }{
		{"nothing back", silent, "shout: " + silent + " closed the connection with the input unanswered (2 bytes, no newline); " + client.SilentClose(silent) + "\n"},
		{"a TLS alert", alert, "shout: " + alert + " closed the connection with the input unanswered (2 bytes, no newline); " + client.AlertBack(alert) + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("shout", "connect", tc.addr)
			cmd.Stdin = strings.NewReader("hi")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if code := exitCode(err); code != 1 || stderr.String() != tc.want {
				t.Errorf("status %d, stderr %q; want 1, %q", code, stderr.String(), tc.want)
			}
		})
	}
}

// A PEM file's name is shown escaped in every error of --ca, --cert,
// --key and --client-ca: one holding ESC or a newline reached the
// terminal raw, a colour turned on or a line of shout's forged.
func TestTLSFileErrorsEscapeTheName(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no ESC or newline in a Windows file name")
	}
	p := newPKI(t)
	const evil = "a\x1b[31m\nb.pem"
	shown := `a\x1b[31m\nb.pem`
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing", evil)
	junk := filepath.Join(dir, evil)
	if err := os.WriteFile(junk, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A certificate and a key of another: the error names both files.
	other := filepath.Join(dir, "other"+evil)
	b, err := os.ReadFile(p.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// An authority that did not sign the server's certificate: the
	// handshake's error names the file, escaped, and the flags
	// (named.Text through escape.Error, a named.Rewriter).
	otherCA := filepath.Join(dir, "ca"+evil)
	if b, err = os.ReadFile(p.caFile); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(otherCA, b, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, nil, "tls://127.0.0.1:0", "--tls-self-signed")
	addr := "tls://" + srv.addr("tls")
	unsigned := "(no authority in " + filepath.Join(dir, "ca"+shown) + " signed it: pass the one that did with --ca FILE, or --insecure to try things out)"
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"connect", "--ca", otherCA, addr}, unsigned, 1},
		{[]string{"bench", "--ca", otherCA, "--duration", "1ms", addr}, unsigned, 1},
		{[]string{"connect", "--ca", missing, "tls://127.0.0.1:1"}, "--ca: open " + filepath.Join(dir, "missing", shown) + ": no such file", 2},
		{[]string{"connect", "--ca", junk, "tls://127.0.0.1:1"}, "--ca " + filepath.Join(dir, shown) + ": no PEM certificate in it", 2},
		{[]string{"connect", "--cert", junk, "--key", junk, "tls://127.0.0.1:1"}, "--cert " + filepath.Join(dir, shown) + ": no PEM certificate in it", 2},
		{[]string{"bench", "--ca", missing, "tls://127.0.0.1:1"}, "--ca: open " + filepath.Join(dir, "missing", shown) + ": no such file", 2},
		{[]string{"bench", "--cert", p.serverCert, "--key", other, "tls://127.0.0.1:1"}, "--key " + filepath.Join(dir, "other"+shown) + " is not the key of --cert", 2},
		{[]string{"serve", "--cert", missing, "--key", junk, "tls://127.0.0.1:0"}, "--cert: open " + filepath.Join(dir, "missing", shown) + ": no such file", 2},
		{[]string{"serve", "--cert", p.serverCert, "--key", junk, "tls://127.0.0.1:0"}, "--key " + filepath.Join(dir, shown) + ": no PEM private key in it", 2},
		{[]string{"serve", "--tls-self-signed", "--client-ca", junk, "tls://127.0.0.1:0"}, "--client-ca " + filepath.Join(dir, shown) + ": no PEM certificate in it", 2},
	} {
		t.Run(tc.args[0]+" "+tc.want, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, strings.NewReader(""), &stdout, &stderr)
			got := stderr.String()
			if code != tc.code || !strings.Contains(got, tc.want) || strings.ContainsRune(got, '\x1b') || strings.Count(got, "\n") != 1 {
				t.Errorf("status %d, stderr %q; want %d and one line with %q, no ESC", code, got, tc.code, tc.want)
			}
		})
	}
}
