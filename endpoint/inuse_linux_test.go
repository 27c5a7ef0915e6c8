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
	// A server on another loopback address: a listen on every address
	// meets it, and was said to find no server there.
	other, err := net.Listen("tcp4", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	otherPort := other.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		name, addr, want string
		nobody           bool
	}{
		{"a connection closing", held.String(), fmt.Sprintf("listen tcp %s: bind: address already in use (no server listens there: a socket that does not listen holds the port, such as a connection that waits out TIME_WAIT, up to a minute, after a server that did not set SO_REUSEADDR hung up first; ss -tan 'sport = :%d' lists such a connection)", held, held.Port), true},
		{"a server", serving.Addr().String(), fmt.Sprintf("listen tcp %s: bind: address already in use", serving.Addr()), false},
		{"every IPv4 address", fmt.Sprintf("0.0.0.0:%d", held.Port), fmt.Sprintf("listen tcp4 0.0.0.0:%d: bind: address already in use (no server listens there: a socket that does not listen holds the port, such as a connection that waits out TIME_WAIT, up to a minute, after a server that did not set SO_REUSEADDR hung up first; ss -tan 'sport = :%d' lists such a connection)", held.Port, held.Port), true},
		{"every address", fmt.Sprintf(":%d", held.Port), fmt.Sprintf("listen tcp :%d: bind: address already in use (no server listens there: a socket that does not listen holds the port, such as a connection that waits out TIME_WAIT, up to a minute, after a server that did not set SO_REUSEADDR hung up first; ss -tan 'sport = :%d' lists such a connection)", held.Port, held.Port), true},
		{"every IPv4 address, a server on one", fmt.Sprintf("0.0.0.0:%d", serving.Addr().(*net.TCPAddr).Port), fmt.Sprintf("listen tcp4 0.0.0.0:%d: bind: address already in use", serving.Addr().(*net.TCPAddr).Port), false},
		{"every address, a server on another", fmt.Sprintf(":%d", otherPort), fmt.Sprintf("listen tcp :%d: bind: address already in use", otherPort), false},
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

// A server on every address, IPv6's and IPv4's (dual-stack), is listed in
// the IPv6 table alone: a listen on 127.0.0.1 that it refuses leaves
// bind's words as they are.
func TestListenInUseWithADualStackServer(t *testing.T) {
	dual, err := net.Listen("tcp", "[::]:0")
	if err != nil {
		t.Skipf("no IPv6 here: %v", err)
	}
	defer dual.Close()
	port := dual.Addr().(*net.TCPAddr).Port
	eps, err := endpoint.Parse(fmt.Sprintf("tcp://127.0.0.1:%d", port), "tcp")
	if err != nil {
		t.Fatal(err)
	}
	lns, _, err := endpoint.Listen(eps)
	for _, l := range lns {
		l.Close()
	}
	want := fmt.Sprintf("listen tcp 127.0.0.1:%d: bind: address already in use", port)
	if err == nil || err.Error() != want || endpoint.NoServer(err) {
		t.Errorf("listen: %v\n  want %s", err, want)
	}
}
