package server

import (
	"bytes"
	"net"
	"strconv"
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
	if writeTakes != nil {
		k, e := writeTakes(len(p))
		if e != 0 {
			return 0, errnoErr(e)
		}
		p = p[:k]
	}
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

// writeTakes, if set, is how many of n bytes asked a write takes at most,
// or the error it fails with instead: a test's stand-in for a kernel that
// takes part of a reply, which it does only when its send buffer is
// nearly full, or fails it. Unset, it costs a read of the variable next
// to a system call.
var writeTakes func(n int) (int, syscall.Errno)

// pollNow is epoll_wait that returns at once.
func pollNow(ep int, events []unix.EpollEvent) (int, error) {
	n, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(unsafe.SliceData(events))), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(n), nil
}

// acceptFD accepts a connection from a non-blocking listener, non-blocking
// and close-on-exec itself, and puts the client's address in rsa.
func acceptFD(lfd int, rsa *unix.RawSockaddrAny) (int, error) {
	n := uint32(unix.SizeofSockaddrAny)
	fd, _, e := syscall.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(rsa)), uintptr(unsafe.Pointer(&n)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, errnoErr(e)
	}
	return int(fd), nil
}

// ctlFD is epoll_ctl, with ev the loop's own (a literal would escape to
// the heap on every call).
func ctlFD(ep, op, fd int, ev *unix.EpollEvent) error {
	_, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(ep), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	return errnoErr(e)
}

// setInt is setsockopt for an int option; it reports whether it was set.
func setInt(fd, level, opt, v int) bool {
	v32 := int32(v)
	_, _, e := syscall.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(unsafe.Pointer(&v32)), 4, 0)
	return e == 0
}

// closeFD closes a socket; it does not block, since none has SO_LINGER
// but with a zero time (resetOnClose), which does not wait.
func closeFD(fd int) {
	syscall.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

// resetOnClose makes the close of a TCP socket send a reset: SO_LINGER
// with a zero time makes it send RST and free the send queue at once,
// where a normal close sends FIN after that queue and leaves the kernel
// holding it, up to the send buffer, while the peer's window stays shut.
func resetOnClose(fd int) {
	l := unix.Linger{Onoff: 1}
	syscall.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_LINGER, uintptr(unsafe.Pointer(&l)), unsafe.Sizeof(l), 0)
}

// addrOf is the TCP or Unix address in rsa, as net's accepted connections
// give it, or nil; fd is the socket it is of, and unixNet a Unix
// listener's network ("unix" or "unixpacket"). A Unix address is read up
// to its first NUL, so rsa must have been zeroed before the kernel wrote
// it, which writes only the family and the name.
func addrOf(fd int, rsa *unix.RawSockaddrAny, unixNet string) net.Addr {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return newTCPAddr(sa.Addr[:], port(sa.Port), "")
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		zone := ""
		if sa.Scope_id != 0 {
			zone = zoneOf(fd, sa.Scope_id)
		}
		return newTCPAddr(sa.Addr[:], port(sa.Port), zone)
	case unix.AF_UNIX:
		sa := (*unix.RawSockaddrUnix)(unsafe.Pointer(rsa))
		p := unsafe.Slice((*byte)(unsafe.Pointer(&sa.Path[0])), len(sa.Path))
		// As syscall reads it: an abstract name's leading NUL is '@',
		// and so is a client socket's with no name.
		at := p[0] == 0
		if at {
			p = p[1:]
		}
		if i := bytes.IndexByte(p, 0); i >= 0 {
			p = p[:i]
		}
		name := string(p)
		if at {
			name = "@" + name
		}
		return &net.UnixAddr{Name: name, Net: unixNet}
	}
	return nil
}

// tcpAddr is a TCP address with its IP's bytes: one allocation, where
// net.TCPAddrFromAddrPort makes two (the address, and the IP's slice).
type tcpAddr struct {
	a  net.TCPAddr
	ip [net.IPv6len]byte
}

// newTCPAddr is the address net.TCPAddrFromAddrPort gives for ip (4 bytes
// or 16), port and zone, in one allocation; its IP's capacity is its
// length, as there, so that an append to it copies.
func newTCPAddr(ip []byte, port uint16, zone string) *net.TCPAddr {
	t := new(tcpAddr)
	n := copy(t.ip[:], ip)
	t.a = net.TCPAddr{IP: t.ip[:n:n], Port: int(port), Zone: zone}
	return &t.a
}

// zoneOf is the name of the interface numbered index, as net names an
// address's zone, or the number if it has none. It asks with an ioctl on
// fd, one system call, where net.InterfaceByIndex reads every interface
// over netlink: a loop does this for each client with a link-local
// address.
func zoneOf(fd int, index uint32) string {
	if ifr, err := unix.NewIfreq(""); err == nil {
		ifr.SetUint32(index)
		if unix.IoctlIfreq(fd, unix.SIOCGIFNAME, ifr) == nil {
			return ifr.Name()
		}
	}
	return strconv.FormatUint(uint64(index), 10)
}
