package client_test

import (
	"net"

	"golang.org/x/sys/unix"
)

// sendQueue is how many bytes c holds that its peer has not acknowledged,
// and whether its send buffer is full past the point where Linux's poll
// says writable (a writer waiting for room waits until that point).
func sendQueue(c net.Conn) (queued int, full bool) {
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return 0, false
	}
	raw.Control(func(fd uintptr) {
		queued, _ = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(p, 0)
		full = err == nil && n == 0
	})
	return queued, full
}
