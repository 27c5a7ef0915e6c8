//go:build !unix

package shouttest

import (
	"net"
	"testing"
)

// ListenHeld is a TCP listener on 127.0.0.1; here, with no SO_REUSEPORT,
// its port is let go when it is closed (see the Unix one).
func ListenHeld(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}
