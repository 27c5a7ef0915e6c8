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
