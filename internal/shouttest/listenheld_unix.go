//go:build unix

package shouttest

import (
	"context"
	"net"
	"testing"

	"shout/internal/sockfd"
)

// ListenHeld is a TCP listener on 127.0.0.1 whose port the test holds for
// as long as it runs: once the listener is closed, a connection there is
// refused, as at a server stopped there, and no listener of the tests
// running at once is given the port (as one let go could be, and a
// client of the test then reached that server). The port is also that of
// a connection of the test's own (see Refusing), which SO_REUSEPORT, set
// on both, lets share it with the listener.
func ListenHeld(t testing.TB) net.Listener {
	t.Helper()
	lc := net.ListenConfig{Control: sockfd.ReusePort}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	peer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	d := net.Dialer{LocalAddr: ln.Addr(), Control: sockfd.ReusePort}
	c, err := d.Dial("tcp", peer.Addr().String())
	if err != nil {
		t.Fatalf("hold %v: %v", ln.Addr(), err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := peer.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return ln
}
