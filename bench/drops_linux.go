package bench

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"shout/internal/sockfd"
)

// socketDrops is how many datagrams c's socket has dropped since it was
// made, its receive buffer full (SO_MEMINFO's drops; Linux 4.12 and
// later), or 0 where that cannot be learnt.
func socketDrops(c net.Conn) int64 {
	var mem [unix.SK_MEMINFO_VARS]uint32
	var errno syscall.Errno
	sockfd.Control(c, func(fd int) {
		n := uint32(unsafe.Sizeof(mem))
		_, _, errno = unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&mem)), uintptr(unsafe.Pointer(&n)), 0)
	})
	if errno != 0 {
		return 0
	}
	return int64(mem[unix.SK_MEMINFO_DROPS])
}
