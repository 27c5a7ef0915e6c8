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
	"testing"
	"time"

	"shout/client"
	"shout/endpoint"
	"shout/internal/shouttest"
)

// A client certificate that an authority the server does not name
// signed (TLSOptions.Cert) is sent all the same, as openssl s_client and
// curl send theirs: crypto/tls sent none, so the server said "the client
// sent no certificate" and the client read "the server ended the
// connection with a TLS alert: certificate required", to a user who had
// given one. The server now refuses the certificate it was sent, naming
// its authority as unknown.
func TestClientCertificateOfAnotherAuthoritySent(t *testing.T) {
	newCA := func(cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := x509.ParseCertificate(der)
		return cert, key
	}
	serverCA, _ := newCA("the server's CA")
	otherCA, otherKey := newCA("another CA")
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
