package bench

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// socketDrops is how many datagrams c's socket has dropped since it was
// made, its receive buffer full (SO_MEMINFO's drops; Linux 4.12 and
// later), or 0 where that cannot be learnt.
func socketDrops(c net.Conn) int64 {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	var mem [unix.SK_MEMINFO_VARS]uint32
	var errno syscall.Errno
	rc.Control(func(fd uintptr) {
		n := uint32(unsafe.Sizeof(mem))
		_, _, errno = unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&mem)), uintptr(unsafe.Pointer(&n)), 0)
	})
	if errno != 0 {
		return 0
	}
	return int64(mem[unix.SK_MEMINFO_DROPS])
}
