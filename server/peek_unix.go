//go:build unix && !linux

package server

import "golang.org/x/sys/unix"

// readableFD reports whether a read of socket fd would return data now,
// by a peek, which skips what reads skip. (On Linux, queued_linux.go's
// makes the call raw, allocating nothing, for the loops.) MSG_DONTWAIT:
// a socket made blocking must not hold the caller.
func readableFD(fd int) bool {
	var b [1]byte
	n, _, err := unix.Recvfrom(fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err == nil && n > 0
}
