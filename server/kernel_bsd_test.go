//go:build unix && !linux

package server_test

import (
	"errors"
	"net"
	"testing"
)

// What the tests read of a Linux server's sockets, which other Unix
// systems do not tell: the tests that use these skip there.

func unsentBytes(int) (int, error) { return 0, errors.ErrUnsupported }

var serverSockopts []struct {
	name       string
	level, opt int
	want       int
}

// backlogHolds would wait until ln's accept queue holds n connections;
// only Linux says how many it holds, and here the test goes on at once.
func backlogHolds(*testing.T, *net.TCPListener, int) {}
