package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"time"

	"shout/endpoint"
)

// TLSOptions are how a client checks a TLS server and proves itself.
type TLSOptions struct {
	// CA is a PEM file of the authorities that may sign the server's
	// certificate; empty means the system's.
	CA string
	// Cert and Key are the client's certificate and key (PEM), for
	// servers that require one (mTLS).
	Cert, Key string
	// Insecure accepts any server certificate: for trying things out only.
	Insecure bool
}

// Config is the tls.Config the options describe.
func (o TLSOptions) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.Insecure}
	if o.CA != "" {
		pem, err := os.ReadFile(o.CA)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s: no PEM certificate in it", o.CA)
		}
		cfg.RootCAs = pool
	}
	if (o.Cert == "") != (o.Key == "") {
		return nil, fmt.Errorf("--cert and --key go together")
	}
	if o.Cert != "" {
		c, err := tls.LoadX509KeyPair(o.Cert, o.Key)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}

// DialTLS is Dial for a tls:// endpoint: it connects and completes the
// handshake, each within timeout.
func DialTLS(ctx context.Context, e endpoint.Endpoint, timeout time.Duration, cfg *tls.Config) (net.Conn, error) {
	c, err := Dial(ctx, e, timeout)
	if err != nil {
		return nil, err
	}
	return Handshake(ctx, c, e.Address, cfg, timeout)
}

// Handshake makes c, connected to addr, a TLS client connection and
// completes the handshake within timeout (zero: no limit), checking the
// server as cfg says (nil: the defaults, the system's roots); the name
// checked is addr's host unless cfg names one. On failure it closes c.
func Handshake(ctx context.Context, c net.Conn, addr string, cfg *tls.Config, timeout time.Duration) (net.Conn, error) {
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, &ConnError{Op: "tls handshake with", Addr: addr, Err: err}
	}
	return tc, nil
}
