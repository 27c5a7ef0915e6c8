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

// A read from a connection its peer reset is a reset, wrapped as net
// wraps it; an end of file and other errors are not.
func TestReset(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s.(*net.TCPConn).SetLinger(0)
	s.Close() // an RST
	_, err = c.Read(make([]byte, 1))
	if !sockerr.Reset(err) {
		t.Errorf("read after the peer's reset: %v (%#v), not told a reset", err, err)
	}
	for _, e := range []error{io.EOF, os.ErrDeadlineExceeded, syscall.EPIPE, errors.New("reset")} {
		if sockerr.Reset(e) {
			t.Errorf("%v told a reset", e)
		}
	}
}

// A connect to a port nothing listens on is refused, wrapped as net wraps
// it; a reset and other errors are not.
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
	for _, e := range []error{io.EOF, syscall.ECONNRESET, syscall.EPIPE, errors.New("refused")} {
		if sockerr.Refused(e) {
			t.Errorf("%v told refused", e)
		}
	}
}

// Running out of descriptors, the process's or the system's, is told as
// such however it is wrapped; other errors are not.
func TestOutOfFiles(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{syscall.EMFILE, true},
		{syscall.ENFILE, true},
		{&net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}, true},
		{&os.PathError{Op: "open", Path: os.DevNull, Err: syscall.ENFILE}, true},
		{syscall.ENOBUFS, false},
		{syscall.EADDRNOTAVAIL, false},
		{io.EOF, false},
		{nil, false},
	} {
		if got := sockerr.OutOfFiles(tc.err); got != tc.want {
			t.Errorf("OutOfFiles(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// A second listener on a taken address is told the address is in use;
// other errors are not.
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
	for _, e := range []error{syscall.EADDRNOTAVAIL, syscall.ECONNREFUSED, io.EOF, nil} {
		if sockerr.AddrInUse(e) {
			t.Errorf("%v told in use", e)
		}
	}
}

// An address not to be had is told so, wrapped as net wraps it; other
// errors are not.
func TestAddrNotAvail(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EADDRNOTAVAIL)}, true},
		{syscall.EADDRINUSE, false},
		{syscall.EMFILE, false},
		{nil, false},
	} {
		if got := sockerr.AddrNotAvail(tc.err); got != tc.want {
			t.Errorf("AddrNotAvail(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// A write after the connection's write side was shut is a broken pipe;
// a reset and other errors are not.
func TestBrokenPipe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c.(*net.TCPConn).CloseWrite()
	_, err = c.Write([]byte("after"))
	if !sockerr.BrokenPipe(err) {
		t.Errorf("write after CloseWrite: %v (%#v), not told a broken pipe", err, err)
	}
	for _, e := range []error{syscall.ECONNRESET, io.EOF, os.ErrDeadlineExceeded, nil} {
		if sockerr.BrokenPipe(e) {
			t.Errorf("%v told a broken pipe", e)
		}
	}
}

// Which failed datagram reads report an ICMP error for an earlier
// datagram (the server reads on from them at once: a client can cause
// them at will) and which say something of the socket.
func TestFromICMP(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{udpRead(syscall.ECONNREFUSED), true},
		{udpRead(syscall.EHOSTUNREACH), true},
		{udpRead(syscall.EMSGSIZE), true},
		{udpRead(syscall.EACCES), true},
		{udpRead(syscall.EBADF), false},
		{udpRead(syscall.ENOMEM), false},
		{os.ErrDeadlineExceeded, false},
		{errors.New("something else"), false},
	} {
		if got := sockerr.FromICMP(tc.err); got != tc.want {
			t.Errorf("FromICMP(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// udpRead is errno as a failed UDP read returns it.
func udpRead(errno syscall.Errno) error {
	return &net.OpError{Op: "read", Net: "udp", Err: os.NewSyscallError("recvfrom", errno)}
}
