package server

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The loops' system calls on non-blocking sockets are made raw: none of
// them can block, so telling the scheduler (as syscall.Syscall does)
// only costs, and costs most on a loop sharing its core with the
// runtime's own threads, which the scheduler then wakes to take the
// loop's place. Only the epoll_wait that may sleep goes through
// unix.EpollWait.

func errnoErr(e syscall.Errno) error {
	switch e {
	case 0:
		return nil
	case unix.EAGAIN:
		return unix.EAGAIN
	}
	return e
}

// readFD reads from a non-blocking descriptor, retrying on EINTR.
func readFD(fd int, p []byte) (int, error) {
	for {
		n, _, e := syscall.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		if e != unix.EINTR {
			if e != 0 {
				return 0, errnoErr(e)
			}
			return int(n), nil
		}
	}
}

// writeFD writes to a non-blocking descriptor, retrying on EINTR.
func writeFD(fd int, p []byte) (int, error) {
	for {
		n, _, e := syscall.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		if e != unix.EINTR {
			if e != 0 {
				return 0, errnoErr(e)
			}
			return int(n), nil
		}
	}
}

// pollNow is epoll_wait that returns at once.
func pollNow(ep int, events []unix.EpollEvent) (int, error) {
	n, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(unsafe.SliceData(events))), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(n), nil
}
