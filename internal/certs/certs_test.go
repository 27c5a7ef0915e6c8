package certs_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"shout/client"
	"shout/internal/certs"
	"shout/internal/named"
)

// A certificate and key that do not make a pair say which flag's file is
// wrong, and how, in words: shout serve said "load certificate a.pem and
// key a.pem: tls: failed to find any PEM data in certificate input",
// shout connect "client certificate: open x: no such file or directory",
// neither naming --cert or --key.
func TestKeyPairErrorsNameTheFlag(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certPEM, keyPEM := pair(t)
	cert, key := write("cert.pem", certPEM), write("key.pem", keyPEM)
	_, otherKeyPEM := pair(t)
	otherKey := write("other.key", otherKeyPEM)
	text := write("text", []byte("not PEM\n"))
	missing := filepath.Join(dir, "missing.pem")

	for _, tc := range []struct {
		name, cert, key string
		want            []string // in the error, in order
	}{
		{"no cert file", missing, key, []string{"--cert: ", missing, "no such file"}},
		{"no key file", cert, missing, []string{"--key: ", missing, "no such file"}},
		{"cert not PEM", text, key, []string{"--cert " + text + ": no PEM certificate in it"}},
		{"key not PEM", cert, text, []string{"--key " + text + ": no PEM private key in it"}},
		{"swapped", key, cert, []string{"--cert " + key + ": ", "private key, not a certificate", "--cert and --key"}},
		{"key of another", cert, otherKey, []string{"--key " + otherKey + " is not the key of --cert " + cert}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The client, a library, names its fields; shout's commands
			// name them by their flags (named.Text).
			fields := strings.NewReplacer("--cert", "TLSOptions.Cert", "--key", "TLSOptions.Key")
			flags := func(f string) string {
				return map[string]string{"TLSOptions.Cert": "--cert", "TLSOptions.Key": "--key"}[f]
			}
			clientConfig := func() error { _, err := client.TLSOptions{Cert: tc.cert, Key: tc.key}.Config(); return err }
			for _, load := range []struct {
				name string
				f    func() error
				text func(error) string
				want func(string) string
			}{
				{"serve", func() error { _, err := certs.Load(context.Background(), tc.cert, tc.key); return err }, error.Error, nil},
				{"client", clientConfig, error.Error, fields.Replace},
				{"client by flags", clientConfig, func(err error) string { return named.Text(err, flags) }, nil},
			} {
				err := load.f()
				if err == nil {
					t.Fatalf("%s: loaded", load.name)
				}
				msg, at := load.text(err), 0
				for _, w := range tc.want {
					if load.want != nil {
						w = load.want(w)
					}
					i := strings.Index(msg[at:], w)
					if i < 0 {
						t.Errorf("%s: %q; want %q in it, in order: %q", load.name, msg, w, tc.want)
						break
					}
					at += i + len(w)
				}
				if strings.Contains(msg, "tls: ") {
					t.Errorf("%s: %q; want no Go package's prefix", load.name, msg)
				}
				if errors.Is(err, certs.ErrNotReady) {
					t.Errorf("%s: %q is ErrNotReady; want it about the file given, not its timing", load.name, msg)
				}
			}
		})
	}
	if _, err := certs.Load(context.Background(), cert, key); err != nil {
		t.Errorf("a pair: %v", err)
	}
}

// pair is a self-signed certificate and its key, PEM-encoded.
func pair(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// A PEM flag given a device that never ends, or a file too large to be
// PEM, says so after MaxPEM bytes instead of reading until memory runs
// out: --cert /dev/zero took every byte it could.
func TestReadPEMBounded(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero here:", err)
	}
	for _, tc := range []struct {
		name string
		f    func() error
	}{
		{"serve --cert", func() error { _, err := certs.Load(context.Background(), "/dev/zero", "/dev/zero"); return err }},
		{"serve --client-ca", func() error {
			s, err := certs.SelfSigned(nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = certs.ServerConfig(s, "/dev/zero")
			return err
		}},
		{"client --ca", func() error { _, err := client.TLSOptions{CA: "/dev/zero"}.Config(); return err }},
		{"client --key", func() error {
			certPEM, _ := pair(t)
			p := filepath.Join(t.TempDir(), "cert.pem")
			if err := os.WriteFile(p, certPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := client.TLSOptions{Cert: p, Key: "/dev/zero"}.Config()
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.f()
			if err == nil || !strings.Contains(err.Error(), "/dev/zero: larger than 8 MiB") {
				t.Fatalf("got %v, want it to say /dev/zero is larger than 8 MiB", err)
			}
		})
	}
}

// An error names the file as it is, ESC and newlines included, as the os
// package's errors do: what shows it escapes it, once (shout's run on a
// terminal, slog's handlers in serve's log). Escaped here too, a log
// said a\\x1b[31m, and a JSON log's reader could not tell the name.
func TestErrorsKeepTheFileNameRaw(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no ESC or newline in a Windows file name")
	}
	dir := t.TempDir()
	junk := filepath.Join(dir, "a\x1b[31m\nb.pem")
	if err := os.WriteFile(junk, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing\x1b[31m\n.pem")
	certPEM, keyPEM := pair(t)
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := certs.Load(context.Background(), cert, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    func() error
		want string
	}{
		{"cert missing", func() error { _, err := certs.Load(context.Background(), missing, key); return err }, "--cert: open " + missing + ": "},
		{"cert not PEM", func() error { _, err := certs.Load(context.Background(), junk, key); return err }, "--cert " + junk + ": no PEM certificate in it"},
		{"key not PEM", func() error { _, err := certs.Load(context.Background(), cert, junk); return err }, "--key " + junk + ": no PEM private key in it"},
		{"client-ca not PEM", func() error { _, err := certs.ServerConfig(store, junk); return err }, "--client-ca " + junk + ": no PEM certificate in it"},
		{"client CA missing", func() error { _, err := client.TLSOptions{CA: missing}.Config(); return err }, "TLSOptions.CA: open " + missing + ": "},
		{"client CA not PEM", func() error { _, err := client.TLSOptions{CA: junk}.Config(); return err }, "TLSOptions.CA " + junk + ": no PEM certificate in it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.f()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q; want %q in it", err, tc.want)
			}
		})
	}
}
