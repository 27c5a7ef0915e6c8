package endpoint

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/pires/go-proxyproto"

	"shout/internal/named"
	"shout/internal/sockerr"
	"shout/internal/sockfd"
	"shout/server"
)

// Options are what Listen does beyond opening sockets. The zero value
// opens plain sockets.
type Options struct {
	// TLS is the configuration of tls:// endpoints, which need one.
	TLS *tls.Config
	// Proxy, if not nil, makes TCP and TLS endpoints read a PROXY
	// protocol header (version 1 or 2) from the sources it trusts.
	Proxy *Proxy
	// HandshakeTimeout bounds a TLS handshake and the wait for a PROXY
	// header; zero means 10 s.
	HandshakeTimeout time.Duration
	// ReusePort sets SO_REUSEPORT on TCP and UDP sockets, so that a new
	// server can listen on the port while the old one drains (and the
	// kernel spreads new connections and datagrams over both meanwhile).
	ReusePort bool
}

// listenConfig is how the options open TCP and UDP sockets. Where
// listenerKeepAlive, a TCP listener is given net's keep-alive, and net
// is told not to set it on each connection, which inherits it (unless
// perConn: net's default).
func (o Options) listenConfig(perConn bool) net.ListenConfig {
	var lc net.ListenConfig
	if o.ReusePort {
		lc.Control = sockfd.ReusePort
	}
	if listenerKeepAlive && !perConn {
		lc.KeepAlive, lc.Control = -1, keepAliveOnListener(lc.Control)
	}
	return lc
}

// errListenerKeepAlive is a listener's keep-alive that could not be set.
var errListenerKeepAlive = errors.New("keep-alive not set on the listener")

// keepAliveOnListener is control (if any), then, on a TCP socket,
// setKeepAlive.
func keepAliveOnListener(control func(network, address string, c syscall.RawConn) error) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		if control != nil {
			if err := control(network, address, c); err != nil {
				return err
			}
		}
		if !strings.HasPrefix(network, "tcp") {
			return nil
		}
		var err error
		if cerr := c.Control(func(fd uintptr) { err = setKeepAlive(fd) }); cerr != nil {
			return cerr
		}
		if err != nil {
			return fmt.Errorf("%w: %w", errListenerKeepAlive, err)
		}
		return nil
	}
}

// Proxy is who may send a PROXY protocol header. A connection from a
// trusted source must begin with one, and is served as coming from the
// address it names; one from any other source must not, and is served
// as itself. Either way, a header that breaks the rule, or is malformed,
// closes the connection.
type Proxy struct {
	From []netip.Prefix
}

// ParseTrusted is a source trusted to send PROXY headers, as a user
// writes one (--proxy-from): an address or a CIDR range, spaces around
// it ignored ("10.0.0.0/8, 192.168.0.0/16" split at the commas), as the
// masked range Proxy.From holds. An IPv4 range mapped into IPv6 is the
// IPv4 one (::ffff:10.0.0.0/104 is 10.0.0.0/8), as trusts unmaps the
// source. Its error names s and says what is wrong with it.
func ParseTrusted(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			// [::1] is how an address with a port is written, and
			// "not an address" would not say what is wrong with it.
			if inner, bits, ok := strings.Cut(s, "]"); ok && strings.HasPrefix(inner, "[") && (bits == "" || bits[0] == '/') && validPrefix(inner[1:]+bits) {
				return netip.Prefix{}, fmt.Errorf("%q: an address here has no brackets: %s", s, typed(inner[1:]+bits))
			}
			// The balancer's host:port, as its config or a log line
			// gives it: the port it connects from is any.
			if ap, err := netip.ParseAddrPort(s); err == nil {
				return netip.Prefix{}, fmt.Errorf("%q: a source here has no port (it may send from any): %s", s, typed(ap.Addr().String()))
			}
			return netip.Prefix{}, fmt.Errorf("%q is not an address or a CIDR range such as 10.0.0.0/8 or fd00::/8", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// validPrefix says whether s is an address or a CIDR range, as
// ParseTrusted takes them.
func validPrefix(s string) bool {
	_, perr := netip.ParsePrefix(s)
	_, aerr := netip.ParseAddr(s)
	return perr == nil || aerr == nil
}

func (p *Proxy) trusts(a net.Addr) bool {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap().WithZone("") // a prefix contains no address with a zone: fe80::1%eth0
	for _, pre := range p.From {
		if pre.Contains(ip) {
			return true
		}
	}
	return false
}

func (o Options) timeout() time.Duration {
	if o.HandshakeTimeout > 0 {
		return o.HandshakeTimeout
	}
	return 10 * time.Second
}

// untrustedPeek is how long a connection from a source not trusted to
// send a PROXY header may take to show whether it begins with one; what
// comes later is served as data. A real header comes in one piece. (A
// variable for tests, whose client may be late on a busy machine: a
// listener takes it when it is made.)
var untrustedPeek = 200 * time.Millisecond

// wrap returns ln as it should be served for e: as it is, or with a
// WrapConn that reads the PROXY header and does the TLS handshake, with
// told (o.watched()) if it is not nil, whose handshake is watched.
func (o Options) wrap(ln net.Listener, e Endpoint, told *tls.Config) net.Listener {
	proxy := o.Proxy != nil && e.Network == "tcp"
	if !proxy && !e.TLS {
		return ln
	}
	w := &wrapping{Listener: ln, opts: o, proxy: proxy, peek: untrustedPeek}
	if e.TLS {
		w.tls, w.watch = o.TLS, told != nil
		if w.watch {
			w.tls = told
		}
	}
	return w
}

// watched is o.TLS as the handshake watch needs it (versionTold), one
// for all the listeners of a Listen, which share its session ticket keys
// so that a session resumes on any of them (keys the program sets are
// o.TLS's, for every Listen; automatic ones are this copy's, for this
// Listen's listeners); nil without TLS, and for a
// listener that may ask for a client certificate (its
// GetConfigForClient may): it takes the client's chain, up to 256 KiB,
// in the clear in TLS 1.2 and in the hello that resumes its session
// (the ticket holds it), so the watch would bound nothing there, and
// refuse such a hello.
func (o Options) watched() *tls.Config {
	if o.TLS == nil || o.TLS.ClientAuth != tls.NoClientCert || o.TLS.GetConfigForClient != nil {
		return nil
	}
	return versionTold(o.TLS)
}

// versionTold is cfg, whose GetConfigForClient tells the heard of the
// handshake whether it speaks TLS 1.3: a client that offers it, to a
// server that does. Its clearWatch reads past the client's
// ChangeCipherSpec in TLS 1.3 only. The rest of the handshake is cfg's
// own, so that what the program does with cfg reaches every connection:
// its session ticket keys, shared by every Listen of it and set again
// whenever the program sets them.
func versionTold(cfg *tls.Config) *tls.Config {
	told := cfg.Clone()
	told.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if h, ok := hello.Conn.(*heard); ok {
			h.clear.known = true
			h.clear.tls13 = (cfg.MaxVersion == 0 || cfg.MaxVersion >= tls.VersionTLS13) && slices.Contains(hello.SupportedVersions, tls.VersionTLS13)
		}
		return cfg, nil
	}
	return told
}

// wrapping is a listener whose connections are wrapped before they are
// served; it is a server.ConnWrapper.
type wrapping struct {
	net.Listener
	opts  Options
	proxy bool
	peek  time.Duration // untrustedPeek
	tls   *tls.Config
	watch bool // the TLS handshake's clear messages are watched (see clearWatch)
}

var _ server.ConnWrapper = (*wrapping)(nil)

var _ server.Readdresser = (*wrapping)(nil)

// Readdresses reports whether wrapping c may change its address: only a
// PROXY header from a trusted source does.
func (w *wrapping) Readdresses(c net.Conn) bool {
	return w.proxy && w.opts.Proxy.trusts(c.RemoteAddr())
}

// TLS reports whether the listener serves TLS.
func (w *wrapping) TLS() bool { return w.tls != nil }

// Unwrap is the listener under it, whose Accept is its own: a graceful
// stop accepts what queued on it before closing it, and wraps and serves
// those connections as it stops (see server.ConnWrapper).
func (w *wrapping) Unwrap() net.Listener { return w.Listener }

// SyscallConn is the listening socket's, as the listener's under it: for
// --trace, which tells the socket by it. (The loops serve no wrapped
// listener, whatever it gives.)
func (w *wrapping) SyscallConn() (syscall.RawConn, error) {
	sc, ok := w.Listener.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

// WrapConn reads the PROXY header, if the listener takes one, then does
// the TLS handshake, if it is a TLS listener, each within the handshake
// timeout. Their failures carry the reason the connection closes with.
func (w *wrapping) WrapConn(c net.Conn) (net.Conn, error) {
	timeout := w.opts.timeout()
	var proxyRead, untrusted bool // for a failed handshake's words
	if w.proxy {
		if w.opts.Proxy.trusts(c.RemoteAddr()) {
			// A trusted source must send a header within the timeout. The
			// deadline is set here, not by proxyproto, which reports a
			// time-out as no header at all: the server tells a wait that
			// its stop cut short (a deadline in the past) by the time-out.
			h := &heard{Conn: c}
			whole := &wholeHeader{Conn: h}
			pc := proxyproto.NewConn(whole, proxyproto.WithPolicy(proxyproto.REQUIRE), proxyproto.SetReadHeaderTimeout(0))
			deadline := time.Now().Add(timeout)
			if err := c.SetReadDeadline(deadline); err != nil {
				return nil, &server.WrapError{Reason: server.ReasonProxyHeader, Err: err}
			}
			// Read it now: the address it names is the one limits and logs see.
			_, err := pc.Read(nil)
			// (proxyproto says no header where the client left silent.)
			if r, ok := h.leftSilent(); err != nil && ok {
				return nil, &server.WrapError{Reason: r, Err: errors.New("closed before its PROXY header")}
			}
			switch {
			case errors.Is(err, proxyproto.ErrInvalidLength) && whole.v2TooLong():
				// (go-proxyproto says only "invalid length".)
				most := int(proxyproto.MaxV2HeaderSize)
				err = fmt.Errorf("a PROXY header from a trusted source of %d bytes, longer than the %d accepted (%d past its first %d: its addresses and TLVs, such as a client certificate): %w",
					v2Fixed+whole.v2Rest(), v2Fixed+most, most, v2Fixed, err)
			case err != nil && whole.cut != nil && errors.Is(whole.cut, os.ErrDeadlineExceeded) && !time.Now().Before(deadline):
				err = fmt.Errorf("a PROXY header from a trusted source not complete within %v: %w", timeout, whole.cut)
			case err != nil && whole.cut != nil:
				// The client's end, or the server's stop or idle timeout,
				// which it tells by the error.
				err = fmt.Errorf("a PROXY header from a trusted source cut short: %w", whole.cut)
			case errors.Is(err, proxyproto.ErrNoProxyProtocol):
				err = errors.New("no PROXY header from a trusted source" + h.instead())
			case errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(deadline):
				err = fmt.Errorf("no PROXY header from a trusted source within %v: %w", timeout, err)
			case errors.Is(err, os.ErrDeadlineExceeded):
				// The server cut the wait short (its idle timeout or stop),
				// and says which.
				err = fmt.Errorf("no PROXY header from a trusted source: %w", err)
			case err == nil:
				err = c.SetReadDeadline(time.Time{})
			default:
				// (go-proxyproto names the fault, not the field or what
				// it held.)
				err = whole.malformed(err)
			}
			if err != nil {
				return nil, &server.WrapError{Reason: server.ReasonProxyHeader, Err: err}
			}
			c = proxied{pc}
			proxyRead = true
		} else {
			// From anyone else a header is refused, and everything else is
			// data: proxyproto's REJECT policy would parse (and so consume)
			// a first line that merely begins "PROXY", and close it.
			var err error
			if c, err = refuseHeader(c, min(timeout, w.peek)); err != nil {
				return nil, &server.WrapError{Reason: server.ReasonProxyHeader, Err: err}
			}
			untrusted = true
		}
	}
	if w.tls != nil {
		h := &heard{Conn: c, readProxy: proxyRead, untrusted: untrusted}
		h.clear.done = !w.watch
		tc := tls.Server(h, w.tls)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		err := tc.HandshakeContext(ctx)
		h.clear.done = true // before the connection is served, whose reads and writes may be on two goroutines
		if err != nil {
			if r, ok := h.leftSilent(); ok {
				return nil, &server.WrapError{Reason: r, Err: errors.New("closed before its TLS handshake began"), Remote: c.RemoteAddr(), Local: c.LocalAddr()}
			}
			if ctx.Err() != nil {
				err = errors.New("no handshake within " + timeout.String())
				// A line shorter than a record's header, and its client
				// waiting for the reply (nc, at a terminal).
				if said := h.notTLS(); said != "" {
					err = &wordedError{said + " (" + err.Error() + ")", err}
				}
			} else {
				err = h.handshakeError(err)
			}
			// Behind a PROXY header, the client it names failed.
			return nil, &server.WrapError{Reason: server.ReasonHandshake, Err: err, Remote: c.RemoteAddr(), Local: c.LocalAddr()}
		}
		c = tc
	}
	return c, nil
}

// headerStarts are how a PROXY header begins: version 1 with each of its
// protocols, and version 2's signature. Bytes that begin otherwise are
// not a header.
var headerStarts = [][]byte{[]byte("PROXY TCP4 "), []byte("PROXY TCP6 "), []byte("PROXY UNKNOWN"), proxyproto.SIGV2}

// refuseHeader looks at what a source not trusted to send a PROXY header
// sends first, for at most wait (a real header comes in one piece, and a
// client that waits to be spoken to must not wait long). If it begins as
// a header does, the connection is refused; anything else, "PROXY" in a
// line of text included, is the client's data, kept for its first reads.
func refuseHeader(c net.Conn, wait time.Duration) (net.Conn, error) {
	br := bufio.NewReaderSize(c, 16) // bufio's least, and room for the longest of headerStarts
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return nil, err
	}
	for n := 1; ; n++ {
		b, err := br.Peek(n)
		maybe := false // b begins as a header does, so far
		for _, h := range headerStarts {
			if k := min(len(b), len(h)); bytes.Equal(b[:k], h[:k]) {
				if k == len(h) {
					return nil, errors.New("a PROXY header from a source not trusted to send one")
				}
				maybe = true
			}
		}
		// Not a header, or no more came in time (or at all): data.
		if !maybe || err != nil {
			break
		}
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return nil, err
	}
	if br.Buffered() == 0 {
		return c, nil
	}
	return &readAhead{Conn: c, r: br}, nil
}

// readAhead is a connection whose first bytes were read ahead into r.
type readAhead struct {
	net.Conn
	r *bufio.Reader // nil once its bytes are read
}

func (c *readAhead) Read(p []byte) (int, error) {
	if c.r == nil {
		return c.Conn.Read(p)
	}
	n, err := c.r.Read(p)
	if c.r.Buffered() == 0 {
		c.r = nil
	}
	return n, err
}

// unsupportedVersions says which versions a client offered, by name, if
// err is crypto/tls's "client offered only unsupported versions: [302
// 301]" (hexadecimal with no 0x: an old client, or a balancer's check,
// that speaks TLS 1.1 and 1.0 alone); "" otherwise. An empty list, "[]",
// is a client whose hello offered a version older than any crypto/tls
// knows (SSL 3.0: a scanner looking for POODLE), not one that offered
// none.
func unsupportedVersions(err error) string {
	_, list, ok := strings.Cut(err.Error(), "client offered only unsupported versions: [")
	list, _, closed := strings.Cut(list, "]")
	if !ok || !closed {
		return ""
	}
	var names []string
	for _, f := range strings.Fields(list) {
		v, err := strconv.ParseUint(f, 16, 16)
		if err != nil {
			return ""
		}
		names = append(names, tls.VersionName(uint16(v)))
	}
	if len(names) == 0 {
		return "the client offers only a version older than TLS 1.0 (SSL 3.0, or older), no version this server speaks"
	}
	said := names[len(names)-1]
	if len(names) > 1 {
		said = strings.Join(names[:len(names)-1], ", ") + " and " + said
	}
	return "the client offers only " + said + ", no version this server speaks"
}

// CloseWrite shuts the write side, as the socket can: a graceful close
// needs it.
func (c *readAhead) CloseWrite() error { return closeWrite(c.Conn) }

// closeWrite shuts c's write side, if it can.
func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// v1Max is the longest a version 1 PROXY header is, its CRLF included.
const v1Max = 107

// wholeHeader is a connection from a source trusted to send a PROXY
// header, as go-proxyproto reads it. go-proxyproto refuses a version 1
// header that does not come in one read, and the network may cut one
// anywhere: so the first read, if it gets the start of a version 1
// header, reads on until the header's end (LF) or its longest, within
// the read deadline set. Version 2, whose length is in it, go-proxyproto
// reads whole; its reads are watched to the header's end, so that one
// the deadline or the client's end of file cuts is told as cut, not as
// no header, nor as go-proxyproto's error about the part it missed.
type wholeHeader struct {
	net.Conn
	read bool  // the first read is done
	cut  error // what ended a read inside the header
	// The first bytes: a version 1 header's first read (the line
	// go-proxyproto reads, and what followed it), or a version 2
	// header's fixed part; seen is how many bytes were read in all of a
	// version 2 header, or that first read's. done once the reads are
	// past the header, or it is none.
	head [v1Max]byte
	seen int
	done bool
}

var sigV1 = []byte("PROXY ")

// v2Fixed is the fixed part of a version 2 header: its signature, its
// version and command, its family, and the length of the rest.
const v2Fixed = 16

func (c *wholeHeader) Read(p []byte) (int, error) {
	if c.done {
		return c.Conn.Read(p)
	}
	n, err := c.Conn.Read(p)
	if c.read || n == 0 || p[0] != sigV1[0] {
		c.read = true
		c.watchV2(p[:n], err)
		return n, err
	}
	c.read, c.done = true, true
	for n < min(len(p), v1Max) && bytes.HasPrefix(p[:n], sigV1[:min(n, len(sigV1))]) && bytes.IndexByte(p[:n], '\n') < 0 {
		if err != nil {
			c.cut = err
			break
		}
		var k int
		k, err = c.Conn.Read(p[n:])
		n += k
	}
	c.seen = copy(c.head[:], p[:n])
	return n, err
}

// watchV2 notes b, read next, and err, what ended that read: a read that
// failed inside a version 2 header, begun, cut it.
func (c *wholeHeader) watchV2(b []byte, err error) {
	if c.seen < v2Fixed {
		copy(c.head[c.seen:v2Fixed], b)
	}
	c.seen += len(b)
	k := min(c.seen, len(proxyproto.SIGV2))
	switch {
	case !bytes.Equal(c.head[:k], proxyproto.SIGV2[:k]):
		c.done = true // not a version 2 header
	case c.seen >= v2Fixed && c.seen >= v2Fixed+c.v2Rest():
		c.done = true // past its end
	case err != nil && c.seen > 0:
		c.cut, c.done = err, true
	}
}

// v2Rest is the length a version 2 header gives for what follows its
// first v2Fixed bytes (its addresses and TLVs), once they are read.
func (c *wholeHeader) v2Rest() int { return int(binary.BigEndian.Uint16(c.head[v2Fixed-2 : v2Fixed])) }

// v2 reports whether the header is a version 2 one, its first n bytes
// read (n from its signature's length to v2Fixed).
func (c *wholeHeader) v2(n int) bool {
	return c.seen >= n && bytes.Equal(c.head[:len(proxyproto.SIGV2)], proxyproto.SIGV2)
}

// v2TooLong reports whether the header is a version 2 one longer than
// go-proxyproto accepts (MaxV2HeaderSize past its first v2Fixed bytes).
func (c *wholeHeader) v2TooLong() bool {
	return c.v2(v2Fixed) && c.v2Rest() > int(proxyproto.MaxV2HeaderSize)
}

// CloseWrite shuts the write side, as the socket can: a graceful close
// needs it.
func (c *wholeHeader) CloseWrite() error { return closeWrite(c.Conn) }

// heard is a connection being wrapped that tells whether its client
// sent a byte, and if not, what ended its reads: the wrapper's own error
// may not say (proxyproto's for a client that closed is "no header").
type heard struct {
	net.Conn
	err    error            // what ended a read, while none had been
	first  [heardBytes]byte // the first bytes read (in the struct: no allocation of their own)
	nFirst int              // how many of first were read
	any    bool             // a byte was read
	// readProxy: the listener read a PROXY header before the handshake
	// (from a trusted source). untrusted: it reads one only from others,
	// and refused any that came within untrustedPeek.
	readProxy, untrusted bool
	// clear, until it is done (a TLS handshake's, watched), reads the
	// handshake messages the client sends in the clear. (The bools
	// together, heard is 96 bytes: 80 without clear, BenchmarkHeard.)
	clear clearWatch
}

// heardBytes is how many of a client's first bytes a failed handshake
// quotes, as shout connect quotes a server's.
const heardBytes = 16

func (h *heard) Read(p []byte) (int, error) {
	n, err := h.Conn.Read(p)
	if n > 0 {
		h.any = true
		h.nFirst += copy(h.first[h.nFirst:], p[:n])
		if !h.clear.done {
			if long := h.clear.feed(p[:n]); long != nil {
				h.clear.done = true
				return n, long
			}
		}
	} else if !h.any {
		h.err = err
	}
	return n, err
}

// maxHandshakeMessage is the longest handshake message a client may send
// in the clear: 16 KiB, as BoringSSL's servers take unless they ask for a
// client certificate (a browser's hello is under 2 KB, its post-quantum
// key share and all). crypto/tls reads a hello of up to 64 KiB, and once
// it has answered one, a certificate of up to 256 KiB whether it asked
// for one or not: a client that declares one so long and sends it
// slowly, or never, holds its buffer (some 375 KB for a certificate)
// until the handshake timeout, having done no cryptography.
const maxHandshakeMessage = 16384

// The TLS record and handshake message types a clearWatch reads (RFC
// 8446, 4).
const (
	recordTypeChangeCipherSpec = 0x14
	recordTypeAlert            = 0x15
	handshakeClientHello       = 1
	handshakeCertificate       = 11
)

// clearWatch reads the lengths of the handshake messages a TLS client
// sends in the clear, from the records they come in, which may split
// them anywhere, their 4-byte headers included: its hellos and, in TLS
// 1.2, the messages before its ChangeCipherSpec. After that, TLS 1.2's
// records are encrypted; TLS 1.3's are not handshake records, but for a
// hello sent again after a HelloRetryRequest. (A ChangeCipherSpec before
// the version is known, which no client sends, is read past, as alerts
// are: crypto/tls reads past a warning, in TLS 1.2 or before the hello.)
type clearWatch struct {
	rec  [5]byte // the record header being read, recN bytes of it
	msg  [4]byte // the current handshake message's header, msgN bytes of it
	recN uint8
	msgN uint8
	left uint16 // the bytes of the current record's payload still to come
	body int32  // the bytes of the current message's body still to come

	skip  bool // the current record holds no handshake messages (a ChangeCipherSpec, an alert)
	known bool // the version is known (the server has read the client's hello)
	tls13 bool // and is TLS 1.3
	done  bool // the client's records are encrypted from here on, or none are watched
}

// feed reads b, what the client sent next; it returns the error of a
// message that declares itself too long, or nil.
func (w *clearWatch) feed(b []byte) error {
	for len(b) > 0 && !w.done {
		if w.left == 0 {
			// A record header (an empty record's payload is none).
			k := copy(w.rec[w.recN:], b)
			w.recN += uint8(k)
			b = b[k:]
			if int(w.recN) < len(w.rec) {
				return nil
			}
			w.recN, w.left = 0, binary.BigEndian.Uint16(w.rec[3:])
			switch w.rec[0] {
			case recordTypeHandshake:
				w.skip = false
			case recordTypeChangeCipherSpec:
				w.skip = true
				w.done = w.known && !w.tls13 // TLS 1.2's Finished comes next, encrypted
			case recordTypeAlert:
				w.skip = true // a warning, which crypto/tls reads past (a fatal one ends the handshake)
			default:
				w.done = true // crypto/tls's to refuse, or encrypted
			}
			continue
		}
		k := min(len(b), int(w.left))
		switch {
		case w.skip:
		case w.body > 0:
			k = min(k, int(w.body))
			w.body -= int32(k)
		default:
			k = min(k, len(w.msg)-int(w.msgN))
			w.msgN += uint8(copy(w.msg[w.msgN:], b[:k]))
			if int(w.msgN) == len(w.msg) {
				w.msgN, w.body = 0, int32(w.msg[1])<<16|int32(w.msg[2])<<8|int32(w.msg[3])
				if w.body > maxHandshakeMessage {
					return &messageTooLongError{w.msg[0], int(w.body)}
				}
			}
		}
		w.left -= uint16(k)
		b = b[k:]
	}
	return nil
}

// messageTooLongError is a handshake message of type typ that declares
// itself n bytes long, more than maxHandshakeMessage.
type messageTooLongError struct {
	typ byte
	n   int
}

func (e *messageTooLongError) Error() string {
	switch e.typ {
	case handshakeClientHello:
		return fmt.Sprintf("the client's hello (ClientHello) is %d bytes long, longer than the %d accepted", e.n, maxHandshakeMessage)
	case handshakeCertificate:
		return fmt.Sprintf("the client's Certificate of %d bytes is longer than the %d accepted, where no client certificate is asked for", e.n, maxHandshakeMessage)
	}
	return fmt.Sprintf("the client's handshake message of type %d and %d bytes is longer than the %d accepted", e.typ, e.n, maxHandshakeMessage)
}

// notTLS says that the client does not speak TLS, quoting its first
// bytes, if they are not a TLS record's; "" if they may be, or there are
// none.
func (h *heard) notTLS() string {
	if q := h.quoted(); q != "" {
		return "the client does not speak TLS: it sent " + q
	}
	return ""
}

// quoted is the client's first bytes, quoted, as notTLS says them; "" if
// they may be a TLS record's, or there are none.
func (h *heard) quoted() string {
	first := h.first[:h.nFirst]
	if len(first) == 0 || first[0] == recordTypeHandshake {
		return ""
	}
	if len(first) == heardBytes { // cut at a character, not in it, which would quote as bytes not UTF-8
		for i := len(first) - 1; i >= max(0, len(first)-utf8.UTFMax); i-- {
			if utf8.RuneStart(first[i]) {
				if !utf8.FullRune(first[i:]) {
					first = first[:i]
				}
				break
			}
		}
	}
	return `"` + server.Escape(first) + `"`
}

// instead says what a trusted source sent where its PROXY header was
// due, after a colon: its first bytes quoted, or that it began a TLS
// handshake (a balancer that passes TLS on, its send-proxy left out).
func (h *heard) instead() string {
	switch q := h.quoted(); {
	case q != "":
		return ": it sent " + q
	case h.nFirst > 0:
		return ": it began a TLS handshake"
	}
	return ""
}

// proxyHeader reports whether the client's first bytes begin as a PROXY
// protocol header does (headerStarts).
func (h *heard) proxyHeader() bool {
	for _, s := range headerStarts {
		if bytes.HasPrefix(h.first[:h.nFirst], s) {
			return true
		}
	}
	return false
}

// recordTypeHandshake is the first byte of every TLS client's first
// record (RFC 8446, 5.1).
const recordTypeHandshake = 0x16

// The settings of Options.TLS that check a client's certificate, as the
// handshake's errors name them.
const (
	optClientAuth = named.Setting("Options.TLS.ClientAuth")
	optClientCAs  = named.Setting("Options.TLS.ClientCAs")
	optProxy      = named.Setting("Options.Proxy")
	optProxyFrom  = named.Setting("Options.Proxy.From")
)

// handshakeError words err, a handshake that failed other than by time,
// where Go's words are its own: a client that does not speak TLS has its
// first bytes quoted ("tls: first record does not look like a TLS
// handshake", or "unexpected EOF" of a line shorter than a record's
// header), one that closed during its hello says so, one that sent an
// alert says what it refused, and one whose certificate the TLS config
// refuses (none, while its ClientAuth requires one, or one of an
// authority not in its ClientCAs) says which, naming those fields, and one
// that offers only versions the server does not speak names them. Others
// (no cipher suite in common, an expired client certificate) keep their
// words.
func (h *heard) handshakeError(err error) error {
	if long := (*messageTooLongError)(nil); errors.As(err, &long) {
		return long
	}
	switch said := h.notTLS(); {
	case said != "" && h.proxyHeader() && h.readProxy:
		return &wordedError{"the client sent a second PROXY protocol header, after the one this listener read: it sent " + h.quoted(), err}
	case said != "" && h.proxyHeader() && h.untrusted:
		// Late: one that came at once was refused, and said so.
		return named.Reword(err, "the client sent a PROXY protocol header, from a source not trusted to send one (only those in %s are): it sent %s", optProxyFrom, h.quoted())
	case said != "" && h.proxyHeader():
		// A balancer in front that sends one, and a listener not made to
		// read it: Go says "first record does not look like a TLS
		// handshake", and the quote alone leaves the operator to know
		// what its bytes are.
		return named.Reword(err, "the client sent a PROXY protocol header, and this listener reads none (only with %s does it): it sent %s", optProxy, h.quoted())
	case said != "":
		return &wordedError{said, err}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &wordedError{"the client closed the connection during the handshake", err}
	}
	// Where client certificates are checked, a client that proves
	// nothing, or not enough.
	var unknown x509.UnknownAuthorityError
	switch {
	case strings.Contains(err.Error(), "client didn't provide a certificate"):
		return named.Reword(err, "the client sent no certificate, and %s requires one", optClientAuth)
	case errors.As(err, &unknown):
		return named.Reword(err, "the client's certificate is not signed by an authority of %s", optClientCAs)
	}
	if said := unsupportedVersions(err); said != "" {
		return &wordedError{said, err}
	}
	// The client's alert, "remote error: tls: bad certificate": most
	// often a client that does not trust the certificate (self-signed,
	// or signed by an authority it was not given).
	if alert, ok := strings.CutPrefix(err.Error(), "remote error: tls: "); ok {
		if strings.Contains(alert, "certificate") {
			return &wordedError{"the client does not trust this server's certificate (" + alert + ")", err}
		}
		return &wordedError{"the client ended the handshake (" + alert + ")", err}
	}
	return err
}

// CloseWrite shuts the write side, as the socket can: a graceful close
// needs it.
func (h *heard) CloseWrite() error { return closeWrite(h.Conn) }

// leftSilent is the Reason of a connection whose client left before
// sending a byte: ReasonEOF or ReasonReset, as a balancer's or
// Kubernetes' TCP health check does. That is no failed handshake: the
// server serves it as a connection that opened and closed, as a plain
// TCP listener does, not as a warning and a failure counted. A read that
// ended otherwise (a time-out, the server's stop) is not one.
func (h *heard) leftSilent() (server.Reason, bool) {
	switch {
	case h.any:
		return 0, false
	case errors.Is(h.err, io.EOF):
		return server.ReasonEOF, true
	case sockerr.Reset(h.err):
		return server.ReasonReset, true
	}
	return 0, false
}

// proxied is a TCP connection after its PROXY header.
//
// It can shut its write side, as the socket under it can: proxyproto.Conn
// cannot, and a graceful close (at a stop, or turning a client away over
// a limit) shuts the write side and reads to the client's end of file, so
// that closing sends no reset.
//
// Its addresses are the header's if they are TCP addresses. A header may
// name Unix sockets instead (a balancer that took the client on one), or
// datagram addresses; the connection is then served as itself, as with a
// LOCAL header: it came over TCP, and the limits and metrics count it by
// its IP address.
type proxied struct{ *proxyproto.Conn }

func (p proxied) CloseWrite() error { return closeWrite(p.Raw()) }

func (p proxied) RemoteAddr() net.Addr { return p.pick(p.Conn.RemoteAddr(), p.Raw().RemoteAddr()) }
func (p proxied) LocalAddr() net.Addr  { return p.pick(p.Conn.LocalAddr(), p.Raw().LocalAddr()) }

// pick is the header's address, if both the header's are TCP addresses,
// or the socket's.
func (p proxied) pick(header, socket net.Addr) net.Addr {
	if h := p.ProxyHeader(); h != nil {
		_, src := h.SourceAddr.(*net.TCPAddr)
		_, dst := h.DestinationAddr.(*net.TCPAddr)
		if !src || !dst {
			return socket
		}
	}
	return header
}
