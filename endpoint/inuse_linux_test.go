package endpoint_test

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"shout/endpoint"
	"shout/internal/shouttest"
)

// After the socket lesson's server (docs/lesson.md, 2.3), which does not
// set SO_REUSEADDR, has hung up first on a client, its connection holds
// the port in TIME_WAIT for a minute, and serve on that port said only
// "bind: address already in use", which sent a learner looking for a
// server that was not there. Where no socket listens, at the address or
// at a wildcard one, it says what holds the port, a wildcard's listen
// too; where one does, the bind's words are left as they are.
func TestListenInUseWithNoServer(t *testing.T) {
	held := shouttest.HeldPort(t)
	serving, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer serving.Close()
	for _, tc := range []struct {
		name, addr, want string
		nobody           bool
	}{
		{"a connection closing", held.String(), fmt.Sprintf("listen tcp %s: bind: address already in use (no server listens there: a socket that does not listen holds the port, such as a connection that waits out TIME_WAIT, up to a minute, after a server that did not set SO_REUSEADDR hung up first; ss -tan 'sport = :%d' lists it)", held, held.Port), true},
		{"a server", serving.Addr().String(), fmt.Sprintf("listen tcp %s: bind: address already in use", serving.Addr()), false},
		{"every IPv4 address", fmt.Sprintf("0.0.0.0:%d", held.Port), fmt.Sprintf("listen tcp4 0.0.0.0:%d: bind: address already in use (no server listens there: a socket that does not listen holds the port, such as a connection that waits out TIME_WAIT, up to a minute, after a server that did not set SO_REUSEADDR hung up first; ss -tan 'sport = :%d' lists it)", held.Port, held.Port), true},
		{"every address", fmt.Sprintf(":%d", held.Port), fmt.Sprintf("listen tcp :%d: bind: address already in use (no server listens there: a socket that does not listen holds the port, such as a connection that waits out TIME_WAIT, up to a minute, after a server that did not set SO_REUSEADDR hung up first; ss -tan 'sport = :%d' lists it)", held.Port, held.Port), true},
		{"every IPv4 address, a server on one", fmt.Sprintf("0.0.0.0:%d", serving.Addr().(*net.TCPAddr).Port), fmt.Sprintf("listen tcp4 0.0.0.0:%d: bind: address already in use", serving.Addr().(*net.TCPAddr).Port), false},
	} {
		eps, err := endpoint.Parse("tcp://"+tc.addr, "tcp")
		if err != nil {
			t.Fatal(err)
		}
		lns, _, err := endpoint.Listen(eps)
		for _, l := range lns {
			l.Close()
		}
		if err == nil || err.Error() != tc.want || !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("%s: listen: %v\n  want %s", tc.name, err, tc.want)
		}
		if got := endpoint.NoServer(err); got != tc.nobody {
			t.Errorf("%s: NoServer(%v) = %v, want %v", tc.name, err, got, tc.nobody)
		}
	}
}
