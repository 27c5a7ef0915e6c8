package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"weak"

	"shout/endpoint"
	"shout/internal/certs"
	"shout/internal/escape"
	"shout/internal/named"
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

// The options as the errors of Config and Handshake name them.
const (
	optCA       = named.Setting("TLSOptions.CA")
	optCert     = named.Setting("TLSOptions.Cert")
	optKey      = named.Setting("TLSOptions.Key")
	optInsecure = named.Setting("TLSOptions.Insecure")
)

// Config is the tls.Config the options describe. Its errors name the
// options as fields (TLSOptions.CA).
func (o TLSOptions) Config() (*tls.Config, error) {
	return o.ConfigContext(context.Background())
}

// ConfigContext is Config with ctx for the reads of CA, Cert and Key: if
// one waits (a named pipe not written to yet, up to 10 s), ctx ends the
// wait, and a notice that ctx carries says it waits (certs.WithWaitNotice,
// internal to shout: shout connect and shout bench give one).
func (o TLSOptions) ConfigContext(ctx context.Context) (*tls.Config, error) {
	if o.Insecure && o.CA != "" {
		// It was taken, and checked nothing.
		return nil, named.Errorf("%s or %s, not both: %[2]s accepts any server certificate, %[1]s's authorities included", optCA, optInsecure)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.Insecure}
	if o.CA != "" {
		pem, err := certs.ReadPEMContext(ctx, optCA, o.CA)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, named.Errorf("%s %s: no PEM certificate in it", optCA, o.CA)
		}
		cfg.RootCAs = pool
		nameCA(pool, o.CA, pem)
	}
	if (o.Cert == "") != (o.Key == "") {
		return nil, named.Errorf("%s and %s go together", optCert, optKey)
	}
	if o.Cert != "" {
		c, err := certs.LoadKeyPairAsContext(ctx, optCert, optKey, o.Cert, o.Key)
		if err != nil {
			return nil, err
		}
		// Sent whatever authorities the server names, as openssl s_client
		// and curl send theirs: crypto/tls sends a certificate in
		// Certificates only if one of them signed it, and sent none, so
		// the server said that it got none ("certificate required"), to
		// a user who had given one; now it refuses this one, its
		// authority unknown to it.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
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
	sc := &sniffConn{Conn: c}
	tc := tls.Client(sc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		if why := sc.notTLS(err); why != nil {
			err = why
		} else if unknown := (x509.UnknownAuthorityError{}); errors.As(err, &unknown) {
			if signer, in := notCA(unknown.Cert, err, cfg.RootCAs); signer != "" {
				try, args := insecureWay(cfg.RootCAs != nil)
				err = named.Reword(err, "%s (%s, in %s, signed it but may not sign certificates: it is no CA, or its key usage leaves out certificate signing; "+try+" accepts it, to try things out)", append([]any{err, strconv.Quote(signer), in}, args...)...)
			} else {
				err = untrusted(err, cfg.RootCAs != nil, caFile(cfg.RootCAs))
			}
		} else if hostname := (x509.HostnameError{}); errors.As(err, &hostname) {
			err = wrongName(err, hostname, cfg.RootCAs != nil)
		} else if invalid := (x509.CertificateInvalidError{}); errors.As(err, &invalid) {
			// Expired, not yet valid, or not for a server: the option
			// that accepts it is named, as curl names its -k; in place
			// of the authorities given, which it is refused beside.
			if cfg.RootCAs != nil {
				err = named.Reword(err, "%s (%s in place of %s accepts it, to try things out)", err, optInsecure, optCA)
			} else {
				err = named.Reword(err, "%s (%s accepts it, to try things out)", err, optInsecure)
			}
		}
		return nil, &ConnError{Op: "tls handshake with", Addr: addr, Err: escape.Error{Err: err}}
	}
	return tc, nil
}

// sniffConn keeps the first bytes the server sends, so that a handshake
// that fails on a server that does not speak TLS can say so: crypto/tls
// says "error decoding message" or "unexpected handshake message of type
// *tls.clientHelloMsg" when an echo or uppercase server sends the hello
// back, and the like for a server with a greeting.
type sniffConn struct {
	net.Conn
	head []byte
}

// sniffLen is how much of what the server sends first is kept: enough
// for a TLS record's header and its handshake type, and to show a plain
// server's first words.
const sniffLen = 16

func (s *sniffConn) Read(p []byte) (int, error) {
	n, err := s.Conn.Read(p)
	if k := min(n, sniffLen-len(s.head)); k > 0 {
		s.head = append(s.head, p[:k]...)
		if s.echoed() {
			// Fail the handshake now: an uppercase server's copy can be
			// shorter than the record it claims to be, and crypto/tls
			// would wait for the rest until the timeout.
			return n, errEchoed
		}
	}
	return n, err
}

// echoed reports whether the server sent a client's hello: ours, back.
// Only a client sends one, and the bytes that say so are not letters,
// which an uppercase server would change.
func (s *sniffConn) echoed() bool {
	h := s.head
	return len(h) >= 6 && h[0] == recordHandshake && h[5] == handshakeClientHello
}

// SilentClose says of a server that closed a plain TCP connection at
// addr without a byte back, after it was sent lines, what such silence
// may mean: a TLS server (Go's, shout's, most others) closes so on a
// first record that is no TLS hello, and a server at its connection
// limit closes so too, as does one that wants a PROXY header first
// (shout's --proxy-protocol, dialled past its balancer) and a balancer
// with no server up behind it (HAProxy in mode tcp). It is the hint the
// other way round from what a TLS client says of a server that does not
// speak TLS.
func SilentClose(addr string) string {
	return "nothing came back, as from a TLS server sent plain text (if it serves TLS, connect to tls://" + addr + "), a server at its connection limit or waiting for a PROXY header, or a proxy with no server up behind it"
}

// AlertBack says of a server that answered plain text sent to addr
// with a TLS alert alone (PipeResult.TLSAlert), and closed, what it is.
// What came back reads as bytes of no meaning (^U^C^C^@^B^B2).
func AlertBack(addr string) string {
	return "what came back is a TLS alert: it speaks TLS (connect to tls://" + addr + ")"
}

// alertLen is the length of a TLS alert record: a record's header of 5
// bytes, then the alert's level and description.
const alertLen = 7

// isAlert reports whether p begins as a TLS alert record of any version
// 3.x (SSL 3.0 to TLS 1.3), of the length of one alert, whose level is
// warning (1) or fatal (2).
func isAlert(p []byte) bool {
	return len(p) >= alertLen && p[0] == recordAlert && p[1] == 3 && p[2] <= 4 && p[3] == 0 && p[4] == 2 && (p[5] == 1 || p[5] == 2)
}

// untrusted is a handshake's error err for a server certificate signed
// by an authority the client does not know, said with what to do: a test
// server's certificate is self-signed or signed by a test CA, and the
// bare error names neither way out. If authorities were given (given; as
// a TLSOptions.CA file, if known), the hint says they are not the one:
// told only to pass one, a user who had passed one went looking for what
// was wrong with the option. The hint names the options as fields.
func untrusted(err error, given bool, file string) error {
	const ways = "%s FILE, or %s to try things out)"
	switch {
	case file != "":
		return named.Reword(err, "%s (no authority in %s signed it: pass the one that did with "+ways, err, file, optCA, optInsecure)
	case given:
		return named.Reword(err, "%s (no authority given signed it: pass the one that did with "+ways, err, optCA, optInsecure)
	}
	return named.Reword(err, "%s (pass the authority that signed it with "+ways, err, optCA, optInsecure)
}

// insecureWay is the option that accepts a certificate refused, to try
// things out, as a format and its arguments: TLSOptions.Insecure, in
// place of TLSOptions.CA if authorities were given (ca), which it is
// refused beside.
func insecureWay(ca bool) (format string, args []any) {
	if ca {
		return "%s in place of %s", []any{optInsecure, optCA}
	}
	return "%s", []any{optInsecure}
}

// notCA names the certificate that signed c but may not sign
// certificates (an intermediate that is no CA), and where it is: in the
// chain the server sent, as err (a handshake's) holds it, or in the file
// that TLSOptions.Config read pool from; or is "", "". Such a chain was
// refused as signed by no authority given, and a user looked for
// another, where the one given may have signed that certificate, or been
// it. crypto/x509 says "possibly because of ... parent certificate cannot
// sign this kind of certificate" of any certificate by the name of c's
// issuer, one that signed nothing included (shout's self-signed
// certificates share theirs), so the signature is checked here.
func notCA(c *x509.Certificate, err error, pool *x509.CertPool) (name, in string) {
	if c == nil {
		return "", ""
	}
	if sent := (*tls.CertificateVerificationError)(nil); errors.As(err, &sent) {
		if name := signerNotCA(c, sent.UnverifiedCertificates); name != "" {
			return name, "the server's chain"
		}
	}
	if src := caSourceOf(pool); src.file != "" {
		if name := signerNotCA(c, src.certs); name != "" {
			return name, src.file
		}
	}
	return "", ""
}

// signerNotCA names the certificate of among that signed c but may not
// sign certificates, or is "".
func signerNotCA(c *x509.Certificate, among []*x509.Certificate) string {
	for _, p := range among {
		if p.Equal(c) || !errors.As(c.CheckSignatureFrom(p), new(x509.ConstraintViolationError)) ||
			p.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) != nil {
			continue
		}
		if p.Subject.CommonName != "" {
			return p.Subject.CommonName
		}
		return p.Subject.String()
	}
	return ""
}

// wrongName is a handshake's error err, a certificate refused for the
// host dialled (h), said with what to do: connect by a name it holds, or
// TLSOptions.Insecure to try things out (in place of TLSOptions.CA, if
// authorities were given: ca). crypto/tls names only the names of the
// host's kind, so the others are said too: of a certificate for host
// names dialled by its address (a load balancer poked at its IP) it said
// "cannot validate certificate for 127.0.0.1 because it doesn't contain
// any IP SANs", and the other way round "certificate is not valid for
// any names, but wanted to match localhost".
func wrongName(err error, h x509.HostnameError, ca bool) error {
	c := h.Certificate
	if c == nil {
		return err
	}
	try, args := insecureWay(ca)
	same, other := c.DNSNames, make([]string, 0, len(c.IPAddresses))
	for _, ip := range c.IPAddresses {
		other = append(other, ip.String())
	}
	kind, others := "host name", "addresses"
	if net.ParseIP(h.Host) != nil {
		same, other = other, same
		kind, others = "IP address", "names"
	}
	switch {
	case len(same) == 0 && len(other) == 0:
		// (Nor does one that relies on its Common Name, which crypto/tls
		// says.)
		return named.Reword(err, "%s (it holds no name to connect by: "+try+" accepts it, to try things out)", append([]any{err}, args...)...)
	case len(same) == 0:
		said := fmt.Sprintf("x509: certificate is valid for %s, not %s (it names no %s: connect by one of its %s, or ", strings.Join(other, ", "), h.Host, kind, others)
		text, found := strings.CutSuffix(err.Error(), h.Error())
		if !found {
			return err
		}
		return named.Reword(err, "%s"+try+" to try things out)", append([]any{text + said}, args...)...)
	case len(other) > 0:
		return named.Reword(err, "%s (it names %s too: connect by a name it holds, or "+try+" to try things out)", append([]any{err, strings.Join(other, ", ")}, args...)...)
	}
	return named.Reword(err, "%s (connect by a name it holds, or "+try+" to try things out)", append([]any{err}, args...)...)
}

// caFiles holds, for each pool of authorities that TLSOptions.Config read
// (weak.Pointer[x509.CertPool] to caSource), the file it read it from and
// the certificates in it, so that a handshake can name the file, and a
// certificate in it that may not sign: a tls.Config has no room for
// them, and an x509.CertPool cannot be listed. The pointer is weak and
// the entry goes with its pool: a program that makes Configs without end
// does not fill it.
var caFiles sync.Map

// caSource is the file a pool of authorities was read from, and its
// certificates.
type caSource struct {
	file  string
	certs []*x509.Certificate
}

// nameCA notes that pool was read from file, whose text is pemText.
func nameCA(pool *x509.CertPool, file string, pemText []byte) {
	src := caSource{file: file}
	for rest := pemText; len(rest) > 0; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		// As the pool took them: a block that is no certificate, or
		// that does not parse, is passed over.
		if b.Type != "CERTIFICATE" || len(b.Headers) != 0 {
			continue
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			src.certs = append(src.certs, c)
		}
	}
	key := weak.Make(pool)
	caFiles.Store(key, src)
	runtime.AddCleanup(pool, func(k weak.Pointer[x509.CertPool]) { caFiles.Delete(k) }, key)
}

// caSourceOf is where pool was read from, or the zero caSource.
func caSourceOf(pool *x509.CertPool) caSource {
	if pool == nil {
		return caSource{}
	}
	src, _ := caFiles.Load(weak.Make(pool))
	s, _ := src.(caSource)
	return s
}

// caFile is the file pool was read from, or "".
func caFile(pool *x509.CertPool) string { return caSourceOf(pool).file }

var errEchoed = errors.New("the server sent the TLS hello back, as an echo or uppercase server does: it does not speak TLS (connect without tls://)")

// NetConn is the connection sniffed, as tls.Conn's NetConn is.
func (s *sniffConn) NetConn() net.Conn { return s.Conn }

// SyscallConn is the connection's, so that what looks through the TLS
// connection to its socket (its unsent bytes, its state) still sees it.
func (s *sniffConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := s.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

// notTLS says, for a handshake that failed with err, that the server does
// not speak TLS, if what it sent first shows it; otherwise nil.
func (s *sniffConn) notTLS(err error) error {
	h := s.head
	switch {
	case len(h) == 0 && errors.Is(err, io.EOF):
		// Not "EOF". (A TLS server at its connection limit closes so too:
		// this says nothing of TLS. So do a server that wants a PROXY
		// header first and a balancer with no server up behind it, as
		// SilentClose says of plain TCP.)
		return errors.New("the server closed the connection before it answered the TLS hello (as one at its connection limit or waiting for a PROXY header does, or a proxy with no server up behind it)")
	case len(h) == 0:
		return nil
	case s.echoed():
		return errEchoed
	case h[0] != recordHandshake && h[0] != recordAlert, len(h) >= 2 && h[1] != 3:
		// A TLS server's first record is a handshake or an alert, of
		// version 3.x.
		if i := bytes.IndexByte(h, '\n'); i >= 0 {
			h = h[:i+1] // a greeting's first line, not our hello sent back after it
		}
		return fmt.Errorf("the server does not speak TLS: it sent %s (connect without tls://)", quoted(h))
	}
	return nil
}

// TLS record content types and the handshake message type of a hello
// from a client (RFC 8446, 5.1 and 4).
const (
	recordAlert          = 21
	recordHandshake      = 22
	handshakeClientHello = 1
)
