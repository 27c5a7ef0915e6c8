//go:build unix

package bench

import (
	"errors"
	"net"
	"syscall"
)

// readQueued reads into buf, without waiting, each datagram already in
// c's receive queue and gives it to take, which returns true to stop. A
// refusal the kernel tells among them (a datagram sent after the server
// went away) is passed over. It reads at most max datagrams, and none if
// c has no socket to read so.
func readQueued(c net.Conn, buf []byte, max int, take func(n int) bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	for range max {
		var n int
		var rerr error
		// The socket is non-blocking: a read that finds none says EAGAIN.
		if err := rc.Read(func(fd uintptr) bool { n, rerr = syscall.Read(int(fd), buf); return true }); err != nil {
			return
		}
		switch {
		case errors.Is(rerr, syscall.ECONNREFUSED):
			continue
		case rerr != nil:
			return
		}
		if take(n) {
			return
		}
	}
}
