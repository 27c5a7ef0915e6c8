// Package certs holds shout serve's TLS certificate: loaded from files
// and reloaded on demand without a restart, or made in memory for trying
// TLS out; and reads the key pair a client presents
// (LoadKeyPairAsContext).
package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"shout/internal/named"
)

// Store is the certificate a TLS listener presents. Handshakes take it
// through GetCertificate, so Reload changes it for new connections and
// leaves those already open alone.
type Store struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// Load reads a certificate chain and its key from PEM files. Reading one
// may wait (see ReadPEMContext); ctx ends the wait.
func Load(ctx context.Context, certFile, keyFile string) (*Store, error) {
	s := &Store{certFile: certFile, keyFile: keyFile}
	if err := s.Reload(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the files again. If they do not make a certificate, the
// store keeps the one it has and says why. Reading one may wait (see
// ReadPEMContext); ctx ends the wait.
func (s *Store) Reload(ctx context.Context) error {
	if s.certFile == "" {
		return errors.New("the certificate was made in memory: nothing to reload")
	}
	c, err := LoadKeyPairAsContext(ctx, "--cert", "--key", s.certFile, s.keyFile)
	if err != nil {
		return err
	}
	s.cur.Store(&c)
	return nil
}

// LoadKeyPairAsContext reads a certificate chain and its key from the
// PEM files given to the settings cert and key (--cert and --key, or a
// library's fields: client.TLSOptions.Cert). What is wrong with them it
// says naming the setting and its file, in words: crypto/tls says "tls:
// failed to find any PEM data in key input" and names no file. ctx ends
// the reads' waits, and a notice ctx carries says them (WithWaitNotice),
// as ReadPEMContext's.
func LoadKeyPairAsContext(ctx context.Context, cert, key named.Setting, certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := ReadPEMContext(ctx, cert, certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := ReadPEMContext(ctx, key, keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, keyPairError(cert, key, certFile, keyFile, err)
	}
	return c, nil
}

// MaxPEM is the most ReadPEMContext reads: a chain of certificates, or a
// system's whole bundle of authorities (about 200 KiB), fits many times.
const MaxPEM = 8 << 20

// pemWait bounds how long ReadPEMContext waits for a pipe or terminal to be
// written to its end, a named pipe's writer included, or for another
// program's lease on a file to be let go of: long enough for --cert
// <(cmd) whose cmd asks a secret store, or a FIFO's writer that starts
// with shout, short enough that one that never comes or never finishes
// ends the start, or a SIGHUP's reload, with an error. Each file has its
// own: --cert, --key and --client-ca may take three times as long.
var pemWait = 10 * time.Second

// ErrNotReady is what ReadPEMContext's errors wrap for a file that could not be
// read within its wait (pemWait, 10 s): a pipe not written to its end,
// a file another program kept its lease on. The file may be right, and
// another try may read it; errors that do not wrap it are about the
// file given (not there, not PEM, the wrong key), which another try
// reads the same.
var ErrNotReady = errors.New("certs: not ready to be read")

// ReadPEMContext reads the PEM file path given to flag, at most MaxPEM
// bytes: a file larger than that, or a device such as /dev/zero, is no
// PEM file of certificates or keys, and reading it whole would take the
// memory it holds, without end for /dev/zero.
//
// A named pipe is opened without waiting for a writer (opening one to
// read waits for ever if none comes), and a pipe or terminal must then be
// written to its end within pemWait, its writer coming meanwhile if it
// had none: --cert <(cmd) works, and so does a FIFO whose writer is a
// little late. A pipe whose writer closed it having written nothing
// (<(cmd) whose cmd failed) is an error at once. Where Go's poller
// cannot wait on a pipe (macOS), a named pipe with no writer is an error
// at once too, and one whose writer never finishes is waited for.
//
// A socket cannot be opened, and one given is said to be one: the
// system's words were "no such device or address". A regular file that
// another program holds a lease on (a Samba or NFS server that shares
// it) is waited for, up to pemWait, while that program lets go, and then
// said to be leased: the system's words were "resource temporarily
// unavailable".
//
// Either wait, given up, is an error that wraps ErrNotReady; one that
// lasts is said through ctx's notice, if it has one (WithWaitNotice).
// ctx ends it sooner (Ctrl-C on a start that waits): the error then wraps
// ctx.Err(). (A read that the poller cannot wait on, the macOS pipe's,
// is not ended so.)
//
// Its errors name the file as it is, ESC and newlines included (as the
// os package's do): a log handler quotes them, and a program that prints
// them on a terminal escapes them there (shout's run does).
func ReadPEMContext(ctx context.Context, flag named.Setting, path string) ([]byte, error) {
	w := newWaiter(ctx, flag, path)
	defer w.stop()
	f, err := openPEM(ctx, w, path)
	if err != nil {
		return nil, openError(ctx, flag, path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, named.Errorf("%s: %w", flag, err)
	}
	pipe := fi.Mode()&fs.ModeNamedPipe != 0
	b, err := readPEMFile(ctx, w, f, fi.Mode().IsRegular(), pipe)
	waited := errors.Is(err, os.ErrDeadlineExceeded)
	switch {
	case waited && ctx.Err() != nil:
		// (What was written may not have been read: the wait ends at once.)
		return nil, named.Reword(ctx.Err(), "%s %s: not written to its end yet", flag, path)
	case waited && len(b) == 0 && pipe:
		return nil, named.Reword(ErrNotReady, "%s %s: nothing written to it within %v: a pipe with nobody writing to it, or a writer that wrote nothing", flag, path, pemWait)
	case waited:
		return nil, named.Reword(ErrNotReady, "%s %s: not written and closed within %v: a pipe or terminal whose writer has not finished", flag, path, pemWait)
	case err != nil:
		return nil, named.Errorf("%s: %w", flag, err)
	case len(b) > MaxPEM:
		return nil, named.Errorf("%s %s: larger than %d MiB, which no PEM file of certificates or keys is", flag, path, MaxPEM>>20)
	case len(b) == 0 && pipe:
		return nil, named.Errorf("%s %s: an empty pipe: its writer closed it having written nothing, or it has none (did the command of %s <(command) fail?)", flag, path, flag)
	}
	return b, nil
}

// errLeased: openPEM found the file leased by another program, which did
// not let go within pemWait (or before ctx ended).
var errLeased = errors.New("leased by another program")

// openError words err, from opening path for flag, where the system's
// words do not say what is wrong with it.
func openError(ctx context.Context, flag named.Setting, path string, err error) error {
	if fi, serr := os.Stat(path); serr == nil && fi.Mode()&fs.ModeSocket != 0 {
		return named.Errorf("%s %s: a socket, not a file: give the PEM file itself", flag, path)
	}
	switch {
	case errors.Is(err, errLeased) && ctx.Err() != nil:
		return named.Reword(ctx.Err(), "%s %s: another program holds a lease on it and has not let go yet", flag, path)
	case errors.Is(err, errLeased):
		return named.Reword(ErrNotReady, "%s %s: another program holds a lease on it (a Samba or NFS server that shares it does) and did not let go within %v; try again, or give a copy of the file", flag, path, pemWait)
	}
	return named.Errorf("%s: %w", flag, err)
}

// keyPairError words err, tls.X509KeyPair's, for the settings' (cert's
// and key's) files. Its errors are strings only; one not known here keeps
// its words, after the settings and without the "tls: ".
func keyPairError(cert, key named.Setting, certFile, keyFile string, err error) error {
	why := strings.TrimPrefix(err.Error(), "tls: ")
	const swapped = "are %[1]s and %[3]s the wrong way round?"
	switch {
	case why == "failed to find any PEM data in certificate input":
		return named.Errorf("%s %s: no PEM certificate in it", cert, certFile)
	case strings.Contains(why, "in certificate input, but did find a private key"):
		return named.Errorf("%s %s: a private key, not a certificate: "+swapped, cert, certFile, key)
	case why == "failed to find any PEM data in key input":
		return named.Errorf("%s %s: no PEM private key in it", key, keyFile)
	case strings.Contains(why, "found a certificate rather than a key"):
		return named.Errorf("%[3]s %[4]s: a certificate, not a private key: "+swapped, cert, certFile, key, keyFile)
	case strings.Contains(why, "does not match public key"):
		return named.Errorf("%[3]s %[4]s is not the key of %[1]s %[2]s's certificate", cert, certFile, key, keyFile)
	case strings.Contains(why, "certificate input"), strings.HasPrefix(why, "x509: "): // the certificate did not parse
		return named.Errorf("%s %s: %s", cert, certFile, strings.Replace(why, " in certificate input", "", 1))
	case strings.Contains(why, "key input"), strings.Contains(why, "private key"):
		return named.Errorf("%s %s: %s", key, keyFile, strings.Replace(why, " in key input", "", 1))
	}
	return named.Errorf("%s %s and %s %s: %s", cert, certFile, key, keyFile, why)
}

// FromFiles reports whether the certificate came from files, which
// Reload reads again.
func (s *Store) FromFiles() bool { return s.certFile != "" }

// GetCertificate is for tls.Config.GetCertificate.
func (s *Store) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cur.Load(), nil
}

// Fingerprint is the SHA-256 of the certificate, as openssl x509
// -fingerprint -sha256 prints it.
func (s *Store) Fingerprint() string {
	c := s.cur.Load()
	sum := sha256.Sum256(c.Certificate[0])
	hex := make([]string, len(sum))
	for i, b := range sum {
		hex[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(hex, ":")
}

// leaf is the certificate itself, parsed; nil if it does not parse.
func (s *Store) leaf() *x509.Certificate {
	c := s.cur.Load()
	if c.Leaf != nil { // tls.LoadX509KeyPair parses it
		return c.Leaf
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return nil
	}
	return leaf
}

// Subject is the certificate's subject and the names it is for.
func (s *Store) Subject() (subject string, names []string) {
	leaf := s.leaf()
	if leaf == nil {
		return "", nil
	}
	names = append(names, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	return leaf.Subject.String(), names
}

// Validity is the period in which clients that check the certificate
// accept it. Outside it they refuse the handshake; shout still presents
// it, which is what a test of such clients needs.
func (s *Store) Validity() (notBefore, notAfter time.Time) {
	leaf := s.leaf()
	if leaf == nil {
		return time.Time{}, time.Time{}
	}
	return leaf.NotBefore, leaf.NotAfter
}

// SelfSigned makes a certificate in memory for hosts (names or IP
// addresses; a wildcard address stands for localhost and the loopback
// addresses), valid from an hour ago for a year.
func SelfSigned(hosts []string) (*Store, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "shout self-signed", Organization: []string{"shout"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	seen := map[string]bool{}
	add := func(h string) {
		if seen[h] {
			return
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); h == "" || ip != nil && ip.IsUnspecified() {
			for _, l := range []string{"localhost", "127.0.0.1", "::1"} {
				add(l)
			}
			if name, err := os.Hostname(); err == nil {
				add(name)
			}
			continue
		}
		add(h)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	s := &Store{}
	s.cur.Store(&tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key})
	return s, nil
}

// ServerConfig is the TLS configuration of a listener presenting s's
// certificate: TLS 1.2 and 1.3 with the standard library's defaults. With
// a clientCA file (PEM), every client must present a certificate it
// signed.
func ServerConfig(s *Store, clientCA string) (*tls.Config, error) {
	return ServerConfigContext(context.Background(), s, clientCA)
}

// ServerConfigContext is ServerConfig, whose reading of clientCA ctx
// ends if it waits (see ReadPEMContext).
func ServerConfigContext(ctx context.Context, s *Store, clientCA string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.GetCertificate}
	if clientCA != "" {
		pem, err := ReadPEMContext(ctx, "--client-ca", clientCA)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--client-ca %s: no PEM certificate in it", clientCA)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
