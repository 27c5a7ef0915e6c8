package client

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"time"

	"shout/endpoint"
)

// Dial connects to e within timeout (zero: no limit). Its errors read as
// one line that names the address and the cause:
// "connect 127.0.0.1:9: connection refused".
func Dial(ctx context.Context, e endpoint.Endpoint, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, e.Network, e.Address)
	if err != nil {
		return nil, &ConnError{Op: "connect", Addr: e.Address, Err: err}
	}
	return c, nil
}

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
	switch {
	case errors.As(err, &dns) && dns.IsNotFound:
		return "unknown host " + dns.Name
	case errors.As(err, &dns):
		return "cannot look up " + dns.Name + ": " + dns.Err
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the server"
	case errors.Is(err, syscall.EPIPE):
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
