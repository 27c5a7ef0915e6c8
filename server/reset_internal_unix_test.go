//go:build unix

package server

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// reset sets SO_LINGER 0 on the TCP socket beneath however the
// connection is wrapped, and closes it there when the connection served
// is a wrapper: a TLS wrapper's Close would first wait up to 5 s to write
// its close_notify to a client that takes nothing (TestWriteTimeoutResets
// only sees that wait as time, which no test asserts). The socket served
// as it is is left for its caller to close.
func TestResetClosesBeneathAWrapper(t *testing.T) {
	for _, tc := range []struct {
		name        string
		wrap        func(*net.TCPConn) (accepted, served net.Conn)
		closedFirst bool
	}{
		{"plain", func(raw *net.TCPConn) (net.Conn, net.Conn) { return raw, raw }, false},
		{"tls.NewListener", func(raw *net.TCPConn) (net.Conn, net.Conn) {
			tc := tls.Server(raw, &tls.Config{})
			return tc, tc
		}, true},
		{"ConnWrapper", func(raw *net.TCPConn) (net.Conn, net.Conn) {
			return raw, tls.Server(&wrapGuard{Conn: raw}, &tls.Config{})
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			client, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			nc, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			raw := nc.(*net.TCPConn)
			defer raw.Close()
			rc, err := raw.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			accepted, served := tc.wrap(raw)
			c := &conn{accepted: accepted, c: served}
			c.reset()
			var l *unix.Linger
			var lerr error
			cerr := rc.Control(func(fd uintptr) { l, lerr = unix.GetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER) })
			switch {
			case tc.closedFirst && !errors.Is(cerr, net.ErrClosed):
				t.Fatalf("the socket beneath the wrapper is still open (%v): the wrapper's close waits to write its goodbye", cerr)
			case tc.closedFirst:
			case cerr != nil || lerr != nil:
				t.Fatalf("the socket served as it is was closed by reset (%v, %v): its caller closes it", cerr, lerr)
			case l.Onoff == 0 || l.Linger != 0:
				t.Fatalf("SO_LINGER %+v, want on with a zero time", *l)
			}
		})
	}
}
