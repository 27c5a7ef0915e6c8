//go:build unix

package main

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// openFileLimit is the process's limit on open files (Go raises the soft
// limit to the hard one as it starts), or 0 if it cannot be told.
func openFileLimit() uint64 {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return 0
	}
	return uint64(lim.Cur) // int64 on FreeBSD
}

// readerGone reports whether f, a pipe, has had its every reader close
// it (`shout bench --json | cmd` where cmd failed to start): a write to
// it raises SIGPIPE. Asked of the pipe, with no byte written.
func readerGone(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(fds, 0)
		gone = err == nil && n > 0 && pipeGone(fds[0].Revents)
	})
	return gone
}

// pipeGone reports whether poll's revents for a pipe's write end say its
// every reader is gone: POLLERR on Linux, POLLHUP on macOS (its poll
// turns the kqueue filter's EV_EOF into POLLHUP) and FreeBSD (pipe_poll),
// which set no POLLERR there. Neither comes while a reader is left.
func pipeGone(revents int16) bool { return revents&(unix.POLLERR|unix.POLLHUP) != 0 }
