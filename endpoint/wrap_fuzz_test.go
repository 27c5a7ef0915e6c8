package endpoint_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"shout/endpoint"
	"shout/server"
)

// FuzzProxyHeader sends any bytes, cut into reads anywhere, to a
// listener that takes a PROXY header, from a source it trusts to send one
// or from one it does not, and checks what WrapConn makes of them against
// go-proxyproto reading the same bytes whole:
//
//   - from a trusted source, a header go-proxyproto reads is taken,
//     however the network cut it; the connection is served as the client
//     it names, and what follows it is the client's data, every byte;
//     bytes it does not read as a header close the connection for
//     ReasonProxyHeader, saying why in words of its own, not
//     go-proxyproto's alone (or, if none came at all, as a client that
//     left);
//   - from any other source, bytes that begin as a header does close the
//     connection, and any others are served as they came, every byte.
//
// The client closes once it has sent everything, so no wait runs to the
// handshake timeout.
func FuzzProxyHeader(f *testing.F) {
	v1 := func(src, dst string) []byte { return headerTo(f, 1, src, dst) }
	v2 := func(src, dst string) []byte { return headerTo(f, 2, src, dst) }
	tlv := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.IPv4(203, 0, 113, 7), Port: 4242}, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 8080})
	tlv.SetTLVs([]proxyproto.TLV{{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte("example.com")}})
	withTLV, _ := tlv.Format()
	local, _ := (&proxyproto.Header{Version: 2, Command: proxyproto.LOCAL}).Format()
	unix, _ := proxyproto.HeaderProxyFromAddrs(2, &net.UnixAddr{Net: "unix", Name: "/a"}, &net.UnixAddr{Net: "unix", Name: "/b"}).Format()
	for _, raw := range [][]byte{
		append(v1("203.0.113.7:4242", "192.0.2.1:8080"), "hello\n"...),
		append(v1("[2001:db8::7]:4242", "[2001:db8::1]:8080"), "straße\n"...),
		[]byte("PROXY UNKNOWN\r\nhi\n"),
		append(v2("203.0.113.7:4242", "192.0.2.1:8080"), "hello\n"...),
		append(v2("[2001:db8::7]:4242", "[2001:db8::1]:8080"), "hi"...),
		append(withTLV, "hi\n"...),
		append(local, "hi\n"...),
		append(unix, "hi\n"...),
		[]byte("PROXY TCP4 203.0.113.7 "),
		[]byte("PROXY is a word\n"),
		[]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),
		[]byte("hello egon\n"),
		{},
	} {
		for _, trusted := range []bool{true, false} {
			f.Add(raw, trusted, uint64(len(raw)))
		}
	}
	opts := proxyOptions("127.0.0.0/8")
	opts.HandshakeTimeout = bound // a client's end, never the timeout, ends every wait here
	// And a header from an untrusted source is seen, however late its
	// writer runs on a busy machine.
	endpoint.SetUntrustedPeek(f, bound)
	lns, _, err := opts.Listen([]endpoint.Endpoint{{Network: "tcp", Address: "127.0.0.1:0"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { lns[0].Close() })
	w := lns[0].(server.ConnWrapper)

	f.Fuzz(func(t *testing.T, raw []byte, trusted bool, seed uint64) {
		from := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 9), Port: 1234} // not trusted
		if trusted {
			from = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234}
		}
		// A pipe: each write the client makes is one read or more, so
		// the reads are cut where the seed says.
		srv, cli := net.Pipe()
		defer srv.Close()
		r := rand.New(rand.NewPCG(seed, seed>>32))
		first := len(raw) // the bytes the first read can get
		var pieces [][]byte
		for rest := raw; len(rest) > 0; {
			n := 1 + r.IntN(len(rest))
			pieces = append(pieces, rest[:n])
			rest = rest[n:]
		}
		if len(pieces) > 0 {
			first = len(pieces[0])
		}
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			defer cli.Close()
			for _, p := range pieces {
				if _, err := cli.Write(p); err != nil {
					return // the wrap refused it, and closed
				}
			}
		}()
		defer func() { srv.Close(); <-sent }()

		c, err := w.WrapConn(&pipeSocket{Conn: srv, from: from})
		var got []byte
		if err == nil {
			c.SetReadDeadline(time.Now().Add(bound))
			if got, err = io.ReadAll(c); err != nil {
				t.Fatalf("%q: reading after the wrap: %v", raw, err)
			}
		}
		if !trusted {
			refused := headerStart(raw) > 0
			switch {
			case err != nil && !refused:
				t.Fatalf("%q, untrusted: refused (%v), and it is no header", raw, err)
			case err != nil:
				wantReason(t, raw, err, server.ReasonProxyHeader)
			case refused && headerStart(raw) <= first:
				t.Fatalf("%q, untrusted, its header in the first read: served", raw)
			case !bytes.Equal(got, raw):
				t.Fatalf("%q, untrusted: served %q", raw, got)
			}
			return
		}

		// go-proxyproto reading the bytes whole, and where its header ends.
		rd := bytes.NewReader(raw)
		br := bufio.NewReader(rd)
		h, herr := proxyproto.Read(br)
		end := len(raw) - br.Buffered() - rd.Len()
		switch {
		case len(raw) == 0:
			if err == nil {
				t.Fatalf("nothing sent, trusted: served")
			}
			wantReason(t, raw, err, server.ReasonEOF)
		case herr != nil:
			if err == nil {
				t.Fatalf("%q, trusted: served as %v, and go-proxyproto reads no header (%v)", raw, c.RemoteAddr(), herr)
			}
			wantReason(t, raw, err, server.ReasonProxyHeader)
			// (Nor as a malformed header, shout's words where it has none.)
			if we := (*server.WrapError)(nil); errors.As(err, &we) &&
				(strings.HasPrefix(we.Err.Error(), "proxyproto:") || strings.HasPrefix(we.Err.Error(), "a malformed PROXY header:")) {
				t.Fatalf("%q, trusted: refused in go-proxyproto's words alone: %v", raw, err)
			}
		case err != nil:
			t.Fatalf("%q in reads of %d bytes first, trusted: refused (%v), and go-proxyproto reads it whole as %v", raw, first, err, h)
		default:
			if !bytes.Equal(got, raw[end:]) {
				t.Fatalf("%q, trusted: after the header, %q; want %q", raw, got, raw[end:])
			}
			want := from.String()
			_, tcpSrc := h.SourceAddr.(*net.TCPAddr)
			_, tcpDst := h.DestinationAddr.(*net.TCPAddr)
			if h.Command.IsProxy() && tcpSrc && tcpDst {
				want = h.SourceAddr.String()
			}
			if c.RemoteAddr().String() != want {
				t.Fatalf("%q, trusted: served as %v, want %v (header %v)", raw, c.RemoteAddr(), want, h)
			}
		}
	})
}

// headerStart is the length of the start of a PROXY header b begins
// with, or 0: a source not trusted to send one may send anything else.
func headerStart(b []byte) int {
	for _, s := range []string{"PROXY TCP4 ", "PROXY TCP6 ", "PROXY UNKNOWN", string(proxyproto.SIGV2)} {
		if strings.HasPrefix(string(b), s) {
			return len(s)
		}
	}
	return 0
}

// pipeSocket is the server's end of a net.Pipe as a TCP socket from
// from: its deadlines can still be set once the client has closed its
// end (a pipe's refuse then, and WrapConn would fail for that alone), and
// a read of no bytes reads nothing (a pipe's says it is closed; WrapConn
// makes one to have go-proxyproto read the header).
type pipeSocket struct {
	net.Conn
	from   net.Addr
	closed atomic.Bool
}

func (p *pipeSocket) RemoteAddr() net.Addr { return p.from }

func (p *pipeSocket) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	return p.Conn.Read(b)
}

func (p *pipeSocket) Close() error {
	p.closed.Store(true)
	return p.Conn.Close()
}

func (p *pipeSocket) SetDeadline(t time.Time) error {
	return p.asSocket(p.Conn.SetDeadline(t))
}

func (p *pipeSocket) SetReadDeadline(t time.Time) error {
	return p.asSocket(p.Conn.SetReadDeadline(t))
}

func (p *pipeSocket) SetWriteDeadline(t time.Time) error {
	return p.asSocket(p.Conn.SetWriteDeadline(t))
}

func (p *pipeSocket) asSocket(err error) error {
	if errors.Is(err, io.ErrClosedPipe) && !p.closed.Load() {
		return nil // only the client's end is closed
	}
	return err
}

// wantReason fails t unless err is a server.WrapError for reason.
func wantReason(t *testing.T, raw []byte, err error, reason server.Reason) {
	t.Helper()
	var we *server.WrapError
	if !errors.As(err, &we) || we.Reason != reason {
		t.Fatalf("%q: refused with %v, want a WrapError for %v", raw, err, reason)
	}
}

// headerTo is a PROXY header of version from src to dst.
func headerTo(tb testing.TB, version byte, src, dst string) []byte {
	h := proxyproto.HeaderProxyFromAddrs(version, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)),
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
	b, err := h.Format()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
