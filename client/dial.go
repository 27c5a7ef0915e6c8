package client

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"shout/endpoint"
	"shout/internal/sockerr"
)

// Dial connects to e within timeout (zero: no limit). Its errors read as
// one line that names the address and the cause:
// "connect 127.0.0.1:9: connection refused".
//
// Over UDP to a name with several addresses, it dials the first (or the
// last one a line went on to after a refusal, where it was not refused
// too), and Datagrams and Terminal send a datagram refused there to the
// next.
func Dial(ctx context.Context, e endpoint.Endpoint, timeout time.Duration) (net.Conn, error) {
	if e.Network == "udp" {
		if c, ok, err := dialUDPName(ctx, e, timeout); ok {
			if err != nil {
				return nil, DialError(e, err)
			}
			return c, nil
		}
	}
	d := net.Dialer{Timeout: timeout}
	c, err := DialNetwork(ctx, d, e.Network, e.Address)
	if err != nil {
		return nil, DialError(e, err)
	}
	return c, nil
}

// DialNetwork dials addr over network with d, as d.DialContext does, and
// gives its errors as they are, for the caller to word (DialError). Over
// UDP it dials again where d.DialContext alone would not: the port the
// system gives a UDP socket can be the very one it is dialled to, on
// the same address, where nothing listens: the ports a stopped server
// (or a test) freed are in the range it gives them from. The socket is
// then connected to itself, and each line sent came back as its own
// reply, where the port would have refused it (one line in some 28,000
// to a port of that range). Such a socket is closed and dialled again,
// as Go's net does over TCP; three of them running is an error.
func DialNetwork(ctx context.Context, d net.Dialer, network, addr string) (net.Conn, error) {
	if network != "udp" {
		return d.DialContext(ctx, network, addr)
	}
	for try := 1; ; try++ {
		if udpLocal != nil {
			d.LocalAddr = udpLocal(addr)
		}
		c, err := d.DialContext(ctx, "udp", addr)
		if err != nil || !selfConnected(c) {
			return c, err
		}
		c.Close()
		if try == 3 {
			return nil, errSelfConnected
		}
	}
}

// udpLocal, set by a test, is the address to bind a UDP socket dialled
// to addr to, where the system picks one if it is nil or gives nil.
var udpLocal func(addr string) net.Addr

var errSelfConnected = errors.New("the system gave the socket the address and port it connects to, three times")

// selfConnected says c is connected to its own address and port.
func selfConnected(c net.Conn) bool {
	l, ok1 := c.LocalAddr().(*net.UDPAddr)
	r, ok2 := c.RemoteAddr().(*net.UDPAddr)
	return ok1 && ok2 && l.AddrPort() == r.AddrPort()
}

// DialError is err, a failed connect to e, as a ConnError.
func DialError(e endpoint.Endpoint, err error) error {
	if e.Network == "unix" && sockerr.Refused(err) {
		// connect says only "connection refused" of a file that is not a
		// socket, which sends one looking for a server that stopped.
		if fi, serr := os.Stat(e.Address); serr == nil && fi.Mode()&os.ModeSocket == 0 {
			err = &notSocketError{endpoint.FileKind(fi.Mode()), err}
		}
	}
	return &ConnError{Op: "connect", Addr: e.Address, Err: err}
}

// notSocketError is a connect refused at a Unix socket path where a file
// of another kind lies; it wraps connect's error.
type notSocketError struct {
	kind string
	err  error
}

func (e *notSocketError) Error() string { return "a " + e.kind + " is there, not a socket" }
func (e *notSocketError) Unwrap() error { return e.err }

// ConnError is a failure to talk to a server, with the cause in words.
type ConnError struct {
	Op   string // "connect", "send", "receive"
	Addr string
	Err  error
}

func (e *ConnError) Unwrap() error { return e.Err }

func (e *ConnError) Error() string { return e.Op + " " + e.Addr + ": " + Cause(e.Err) }

// Cause says what went wrong in a few words, without Go's layers of
// "dial tcp ...: connect: ...".
func Cause(err error) string {
	var dns *net.DNSError
	var ns *notSocketError
	switch {
	case errors.As(err, &ns):
		return ns.Error()
	case errors.As(err, &dns) && dns.IsNotFound:
		return "unknown host " + dns.Name
	case errors.As(err, &dns):
		return "cannot look up " + dns.Name + ": " + dns.Err
	case sockerr.Refused(err):
		return "connection refused"
	case sockerr.Reset(err):
		return "connection reset by the server"
	case sockerr.BrokenPipe(err):
		return "the server closed the connection"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "unreachable"
	case errors.Is(err, syscall.ENOENT):
		return "no such socket"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err.Error()
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" && op.Err != nil {
		// crypto/tls's for the server's alert ("remote error: tls:
		// certificate required"): without its Op, the alert read as if
		// this side had raised it.
		return "the server ended the connection with a TLS alert: " + strings.TrimPrefix(op.Err.Error(), "tls: ")
	}
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// wrap turns err into a ConnError for addr unless it is one already.
func wrap(op, addr string, err error) error {
	var ce *ConnError
	if err == nil || errors.As(err, &ce) {
		return err
	}
	return &ConnError{Op: op, Addr: addr, Err: err}
}
