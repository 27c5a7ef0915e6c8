package client

import (
	"os"
	"strconv"
	"syscall"
	"time"
)

// readable is f opened again, for reading, non-blocking, so that Go's
// poller waits for its keys rather than a read blocked in the kernel; or
// f if it cannot be. A blocked read is restarted by any signal, and when
// a stopped shout is continued in the background (kill %1: SIGTERM, then
// SIGCONT) the restarted read stops it again (SIGTTIN) before it can
// leave. The open is a new open file description, so the shell's, which
// f shares, stays blocking.
func readable(f *os.File) *os.File {
	r, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return f
	}
	// Not in the poller (the file type does not support a deadline), a
	// non-blocking read would fail at once with EAGAIN.
	if err := r.SetReadDeadline(time.Time{}); err != nil {
		r.Close()
		return f
	}
	return r
}
