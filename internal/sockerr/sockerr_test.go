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
