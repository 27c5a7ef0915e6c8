//go:build unix && !linux

package server_test

import "errors"

// What the tests read of a Linux server's sockets, which other Unix
// systems do not tell: the tests that use these skip there.

func unsentBytes(int) (int, error) { return 0, errors.ErrUnsupported }

var serverSockopts []struct {
	name       string
	level, opt int
	want       int
}
