package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shout/client"
	"shout/endpoint"
	"shout/internal/shouttest"
)

// A server whose chain's intermediate may not sign certificates (no CA),
// under an authority given with TLSOptions.CA: it was told "no authority
// in ca.pem signed it: pass the one that did", where ca.pem held the
// one that signed the intermediate, and the fault is the intermediate.
func TestHandshakeIntermediateNotCA(t *testing.T) {
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := int64(0)
	issue := func(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) *x509.Certificate {
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	rootKey, intKey, leafKey := key(), key(), key()
	root := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "test root"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, nil, &rootKey.PublicKey, rootKey)
	inter := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "no CA"}, IsCA: false, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}, root, &intKey.PublicKey, rootKey)
	leaf := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, inter, &leafKey.PublicKey, intKey)

	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := client.TLSOptions{CA: ca}.Config()
	if err != nil {
		t.Fatal(err)
	}
	// The intermediate in the file of authorities, beside its root, and
	// not in the server's chain: it was told "no authority in ca.pem
	// signed it", where ca.pem held the one that did. (An x509.CertPool
	// cannot be listed: TLSOptions.Config keeps the file's certificates.)
	both := filepath.Join(t.TempDir(), "both.pem")
	if err := os.WriteFile(both, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: inter.Raw})...), 0o600); err != nil {
		t.Fatal(err)
	}
	bothCfg, err := client.TLSOptions{CA: both}.Config()
	if err != nil {
		t.Fatal(err)
	}
	// A certificate of the intermediate's name, no CA either, that
	// signed nothing: the chain is refused for want of the one that did.
	impostor := issue(&x509.Certificate{Subject: pkix.Name{CommonName: "no CA"}, IsCA: false, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}, root, &key().PublicKey, rootKey)
	for _, tc := range []struct {
		name  string
		chain [][]byte
		cfg   *tls.Config
		want  string
	}{
		{"its signer", [][]byte{leaf.Raw, inter.Raw}, cfg, `candidate authority certificate "no CA") ("no CA", in the server's chain, signed it but may not sign certificates: it is no CA, or its key usage leaves out certificate signing; TLSOptions.Insecure in place of TLSOptions.CA accepts it, to try things out)`},
		{"one of its signer's name", [][]byte{leaf.Raw, impostor.Raw}, cfg, `candidate authority certificate "no CA") (no authority in ` + ca + ` signed it: pass the one that did with TLSOptions.CA FILE, or TLSOptions.Insecure to try things out)`},
		{"its signer in the CA file", [][]byte{leaf.Raw}, bothCfg, `candidate authority certificate "no CA") ("no CA", in ` + both + `, signed it but may not sign certificates: it is no CA, or its key usage leaves out certificate signing; TLSOptions.Insecure in place of TLSOptions.CA accepts it, to try things out)`},
		// The server's chain is looked at first: the same one in both.
		{"its signer in both", [][]byte{leaf.Raw, inter.Raw}, bothCfg, `("no CA", in the server's chain, signed it but may not sign certificates: it is no CA, or its key usage leaves out certificate signing; TLSOptions.Insecure in place of TLSOptions.CA accepts it, to try things out)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serverCfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: tc.chain, PrivateKey: leafKey}}}
			addr := shouttest.StreamServer(t, func(c net.Conn) {
				c.SetDeadline(time.Now().Add(bound))
				tls.Server(c, serverCfg).Handshake() // fails: the client refuses the chain
			})
			_, err := client.Handshake(context.Background(), dial(t, "tcp", addr), addr, tc.cfg, bound)
			var unknown x509.UnknownAuthorityError
			if !errors.As(err, &unknown) || !strings.HasSuffix(err.Error(), tc.want) {
				t.Errorf("Handshake: %v; want an unknown authority, ending %s", err, tc.want)
			}
		})
	}
}

// A client certificate that an authority the server does not name
// signed (TLSOptions.Cert) is sent all the same, as openssl s_client and
// curl send theirs: crypto/tls sent none, so the server said "the client
// sent no certificate" and the client read "the server ended the
// connection with a TLS alert: certificate required", to a user who had
// given one. The server now refuses the certificate it was sent, naming
// its authority as unknown.
func TestClientCertificateOfAnotherAuthoritySent(t *testing.T) {
	serverCA, _, _ := shouttest.NewCA(t, "the server's CA", time.Hour)
	otherCA, _, otherKey := shouttest.NewCA(t, "another CA", time.Hour)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "alice"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, otherCA, &key.PublicKey, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "alice.pem"), filepath.Join(dir, "alice.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)

	srvCfg := selfSignedServer(t)
	srvCfg.ClientCAs = x509.NewCertPool()
	srvCfg.ClientCAs.AddCert(serverCA)
	srvCfg.ClientAuth = tls.RequireAndVerifyClientCert
	refused := make(chan error, 1)
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(bound))
		refused <- tls.Server(c, srvCfg).Handshake()
	})
	cfg, err := client.TLSOptions{Cert: certFile, Key: keyFile, Insecure: true}.Config()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.DialTLS(context.Background(), endpoint.Endpoint{Network: "tcp", Address: addr, TLS: true}, bound, cfg)
	if err == nil {
		c.SetDeadline(time.Now().Add(bound))
		c.Read(make([]byte, 1)) // TLS 1.3: the server's refusal comes after the client's handshake
		c.Close()
	}
	var unknown x509.UnknownAuthorityError
	if err := <-refused; !errors.As(err, &unknown) {
		t.Errorf("the server's handshake: %v; want the client's certificate refused for its authority", err)
	}
}
