package sockerr_test

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"shout/internal/sockerr"
)

// connected is a connection on loopback and the server's end of it,
// both closed when the test ends.
func connected(t *testing.T) (c, s net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return c, s
}

// A read from a connection its peer reset is a reset, wrapped as net
// wraps it.
func TestReset(t *testing.T) {
	c, s := connected(t)
	s.(*net.TCPConn).SetLinger(0)
	s.Close() // an RST
	_, err := c.Read(make([]byte, 1))
	if !sockerr.Reset(err) {
		t.Errorf("read after the peer's reset: %v (%#v), not told a reset", err, err)
	}
}

// A connect to a port nothing listens on is refused, wrapped as net wraps
// it.
func TestRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
		t.Skipf("%s accepted a connection after its listener closed: another program took the port", addr)
	}
	if !sockerr.Refused(err) {
		t.Errorf("connect where nothing listens: %v (%#v), not told refused", err, err)
	}
}

// A second listener on a taken address is told the address is in use.
func TestAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	again, err := net.Listen("tcp", ln.Addr().String())
	if err == nil {
		again.Close()
		t.Fatalf("a second listener on %s: no error", ln.Addr())
	}
	if !sockerr.AddrInUse(err) {
		t.Errorf("a second listener on a taken address: %v (%#v), not told in use", err, err)
	}
}

// A write after the connection's write side was shut is a broken pipe.
func TestBrokenPipe(t *testing.T) {
	c, _ := connected(t)
	c.(*net.TCPConn).CloseWrite()
	_, err := c.Write([]byte("after"))
	if !sockerr.BrokenPipe(err) {
		t.Errorf("write after CloseWrite: %v (%#v), not told a broken pipe", err, err)
	}
}

// Each error is told for what it is however net or os wrap it, and only
// for that: a reset is no broken pipe, a deadline no ICMP error.
func TestErrnos(t *testing.T) {
	for _, tc := range []struct {
		name string
		is   func(error) bool
		err  error
		want bool
	}{
		{"Reset", sockerr.Reset, io.EOF, false},
		{"Reset", sockerr.Reset, os.ErrDeadlineExceeded, false},
		{"Reset", sockerr.Reset, syscall.EPIPE, false},
		{"Reset", sockerr.Reset, errors.New("reset"), false},
		{"Refused", sockerr.Refused, io.EOF, false},
		{"Refused", sockerr.Refused, syscall.ECONNRESET, false},
		{"Refused", sockerr.Refused, syscall.EPIPE, false},
		{"Refused", sockerr.Refused, errors.New("refused"), false},
		{"OutOfFiles", sockerr.OutOfFiles, syscall.EMFILE, true},
		{"OutOfFiles", sockerr.OutOfFiles, syscall.ENFILE, true},
		{"OutOfFiles", sockerr.OutOfFiles, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}, true},
		{"OutOfFiles", sockerr.OutOfFiles, &os.PathError{Op: "open", Path: os.DevNull, Err: syscall.ENFILE}, true},
		{"OutOfFiles", sockerr.OutOfFiles, syscall.ENOBUFS, false},
		{"OutOfFiles", sockerr.OutOfFiles, syscall.EADDRNOTAVAIL, false},
		{"OutOfFiles", sockerr.OutOfFiles, io.EOF, false},
		{"OutOfFiles", sockerr.OutOfFiles, nil, false},
		{"AddrInUse", sockerr.AddrInUse, syscall.EADDRNOTAVAIL, false},
		{"AddrInUse", sockerr.AddrInUse, syscall.ECONNREFUSED, false},
		{"AddrInUse", sockerr.AddrInUse, nil, false},
		{"AddrNotAvail", sockerr.AddrNotAvail, &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EADDRNOTAVAIL)}, true},
		{"AddrNotAvail", sockerr.AddrNotAvail, syscall.EADDRINUSE, false},
		{"AddrNotAvail", sockerr.AddrNotAvail, syscall.EMFILE, false},
		{"BrokenPipe", sockerr.BrokenPipe, syscall.ECONNRESET, false},
		{"BrokenPipe", sockerr.BrokenPipe, io.EOF, false},
		{"BrokenPipe", sockerr.BrokenPipe, nil, false},
		// The server reads on at once after an ICMP error for an earlier
		// datagram (a client can cause them at will), and waits after
		// one that says something of the socket.
		{"FromICMP", sockerr.FromICMP, udpRead(syscall.ECONNREFUSED), true},
		{"FromICMP", sockerr.FromICMP, udpRead(syscall.EHOSTUNREACH), true},
		{"FromICMP", sockerr.FromICMP, udpRead(syscall.EMSGSIZE), true},
		{"FromICMP", sockerr.FromICMP, udpRead(syscall.EACCES), true},
		{"FromICMP", sockerr.FromICMP, udpRead(syscall.EBADF), false},
		{"FromICMP", sockerr.FromICMP, udpRead(syscall.ENOMEM), false},
		{"FromICMP", sockerr.FromICMP, os.ErrDeadlineExceeded, false},
		{"FromICMP", sockerr.FromICMP, errors.New("something else"), false},
	} {
		if got := tc.is(tc.err); got != tc.want {
			t.Errorf("%s(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// udpRead is errno as a failed UDP read returns it.
func udpRead(errno syscall.Errno) error {
	return &net.OpError{Op: "read", Net: "udp", Err: os.NewSyscallError("recvfrom", errno)}
}
