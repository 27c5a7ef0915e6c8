package server

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"shout/internal/sockfd"
)

// queued is how many bytes wait in the socket's receive queue, or 0 if
// the connection cannot say (a wrapper gives no raw access).
func (c *conn) queued() int { return c.ioctlInt(unix.SIOCINQ) }

// queueLooked says that queued and unsent look at the socket's queues:
// a stopping connection owes what queued counted.
const queueLooked = true

// unsent is how many bytes of the socket's send queue the client has not
// acknowledged yet, or 0 if the connection cannot say. A wrapped
// connection's (TLS, the PROXY protocol) is its socket's as accepted,
// TLS records and all (see sendQueue).
func (c *conn) unsent() int {
	if c.raw == nil {
		return max(sendQueue(c.accepted).unsent, 0)
	}
	n := 0
	c.raw.Control(func(fd uintptr) { n = unsentFD(int(fd)) })
	return n
}

// unsentFD is how many bytes of socket fd's send queue the client has not
// acknowledged yet (SIOCOUTQ), or 0 if fd cannot say; and 0 once the
// client has reset the TCP connection. SIOCOUTQ goes on counting what
// was queued when the reset came, none of which will ever be sent: a
// wait for the client to take it, after its end of file, lasted
// WriteTimeout (30 s by default) for a client long gone, and ended as a
// write timeout, holding its place among MaxConns, and a stop, meanwhile
// (a client that sent a line and closed at once, its kernel resetting
// the reply, was held so by the goroutine driver).
func unsentFD(fd int) int {
	n, closed := outqFD(fd)
	if closed {
		return 0
	}
	return n
}

// outqFD is how many bytes socket fd's send queue holds (SIOCOUTQ), 0 if
// fd cannot say, and, if it holds some, whether the TCP connection is
// closed (TCP_CLOSE: reset, or timed out), none of them ever to be sent.
func outqFD(fd int) (n int, closed bool) {
	n, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
	if err != nil || n <= 0 {
		return 0, false
	}
	ti, ok := tcpInfoFD(fd)
	return n, ok && ti.State == unix.BPF_TCP_CLOSE
}

// eofGone is what ended the connection, after the client's end of file,
// with replies still queued for it (see eofLookFD), wrapped (TLS, the
// PROXY protocol) or not.
func (c *conn) eofGone() syscall.Errno {
	_, gone := c.eofLook()
	return gone
}

// eofLook looks once at the socket's send queue after the client's end
// of file (see eofLookFD), wrapped (TLS, the PROXY protocol) or not.
func (c *conn) eofLook() (unsent int, gone syscall.Errno) {
	rc := c.raw
	if rc == nil {
		if rc = rawUnder(c.accepted); rc == nil {
			return 0, 0
		}
	}
	rc.Control(func(fd uintptr) { unsent, gone = eofLookFD(int(fd)) })
	return unsent, gone
}

// eofLookFD looks once at TCP socket fd's send queue after the client's
// end of file: the bytes of replies the client may still take (as
// unsentFD counts them), and, if the connection ended with replies still
// queued in it, which the client will never have (SIOCOUTQ goes on
// counting them: see unsentFD), what ended it: the client's reset
// (ECONNRESET, or EPIPE once the client's end of file had come), or the
// server's own kernel giving up on the client (ETIMEDOUT: a
// retransmission or user timeout). Its close is then not "eof", which
// says answered (see eofReason). It reads, so clears, the socket's
// pending error: it looks once, as the connection closes after its end
// of file.
func eofLookFD(fd int) (unsent int, gone syscall.Errno) {
	n, closed := outqFD(fd)
	if !closed {
		return n, 0
	}
	e, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return 0, 0
	}
	return 0, syscall.Errno(e)
}

// stillOwed is what a stopping connection that owed owed bytes still
// owes (see stillOwedFD), or owed if the connection cannot say.
func (c *conn) stillOwed(owed int, marked *bool) int {
	if c.raw == nil {
		return owed
	}
	c.raw.Control(func(fd uintptr) { owed = stillOwedFD(int(fd), owed, marked) })
	return owed
}

func (c *conn) ioctlInt(req uint) int {
	if c.raw == nil {
		return 0
	}
	n := 0
	c.raw.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), req); err == nil {
			n = v
		}
	})
	return n
}

// sendQueue looks at nc's send queue: the timeout watcher's look at the
// socket as accepted, under TLS (its records count) or another wrapper
// that a Listener made (tls.NewListener's) and that gives it through
// NetConn.
func sendQueue(nc net.Conn) sendLook {
	rc := rawUnder(nc)
	if rc == nil {
		return noLook
	}
	look := noLook
	rc.Control(func(fd uintptr) { look = sendQueueFD(int(fd)) })
	return look
}

// rawUnder is the socket under nc's wrappers (see socketUnder), or nil
// if there is none.
func rawUnder(nc net.Conn) syscall.RawConn {
	sc, ok := socketUnder(nc).(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// sendQueueFD looks at socket fd's send queue: its length (SIOCOUTQ) and,
// for TCP, what the peer has acknowledged in all (tcpi_bytes_acked,
// which kernels before 4.1 leave 0). It allocates nothing: the timeout
// sweeps look at every connection whose write waits, each sweep (unix's
// GetsockoptTCPInfo gave each look a TCPInfo of its own: 0.4 MB/s of
// garbage at 1,400 clients that stopped reading).
func sendQueueFD(fd int) sendLook {
	look := noLook
	if v, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ); err == nil {
		look.unsent = v
	}
	if ti, ok := tcpInfoFD(fd); ok {
		look.acked = int64(ti.Bytes_acked)
		if ti.State == unix.BPF_TCP_CLOSE {
			look.unsent = 0 // reset by the client: nothing queued goes (see unsentFD)
		}
	}
	return look
}

// tcpInfoFD is TCP socket fd's TCP_INFO, and whether fd gave it (not a
// Unix socket).
func tcpInfoFD(fd int) (unix.TCPInfo, bool) {
	var ti unix.TCPInfo
	n := uint32(unix.SizeofTCPInfo)
	_, _, e := syscall.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_INFO,
		uintptr(unsafe.Pointer(&ti)), uintptr(unsafe.Pointer(&n)), 0)
	return ti, e == 0
}

// behindMarkFD is how many bytes wait in socket fd's receive queue behind
// TCP's urgent mark, if the next read is at it (SIOCATMARK), and 0
// otherwise. SIOCINQ counts only up to the mark, where reads stop; the
// next read skips the urgent byte, which is not part of the stream, and
// returns what follows it. A stop that answers what had arrived owes
// those bytes too. TCP counts them in a peek that copies nothing
// (MSG_TRUNC), given no buffer; a socket that would copy them instead (a
// Unix socket at its out-of-band byte) fails, and 0 is returned.
func behindMarkFD(fd int) int {
	if at, err := unix.IoctlGetInt(fd, unix.SIOCATMARK); err != nil || at == 0 {
		return 0
	}
	n, _, e := syscall.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), 0, 1<<30,
		unix.MSG_PEEK|unix.MSG_TRUNC|unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0
	}
	return int(n)
}

// stillOwedFD is what a stopping connection on socket fd still owes,
// given owed, the bytes of the queue when it stopped that it has not
// read yet, as SIOCINQ counted them: none once a read would return
// nothing (the queue is read in order, so what had arrived is read),
// however many SIOCINQ counted that no read returns (a Unix socket's
// out-of-band byte, counted even once skipped); and once they are read,
// what waits behind an urgent mark, which SIOCINQ stops at. That is
// counted once a stop, the first time owed is read (marked says it was):
// TCP keeps one mark, so the one that had arrived is the one then met; a
// client that sends another urgent byte and more behind it each time the
// stop reaches a mark must not be answered for as long as it goes on.
func stillOwedFD(fd, owed int, marked *bool) int {
	if owed <= 0 {
		if *marked {
			return 0
		}
		*marked = true
		return behindMarkFD(fd)
	}
	if !readableFD(fd) {
		return 0
	}
	return owed
}

// readableFD reports whether a read of socket fd would return data now,
// by a peek, which skips what reads skip.
func readableFD(fd int) bool {
	var b [1]byte
	n, _, e := syscall.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), 1,
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	return e == 0 && n > 0
}

// queueLen is how many connections wait in drainable listener l's accept
// queue, and whether the system says: a TCP listener's tcpi_unacked is
// that, on Linux; a Unix listener has no count.
func queueLen(l net.Listener) (n int, known bool) {
	tl, ok := acceptsFrom(l).(*net.TCPListener)
	if !ok {
		return 0, false
	}
	sockfd.Control(tl, func(fd int) {
		if ti, ok := tcpInfoFD(fd); ok {
			n, known = int(ti.Unacked), true
		}
	})
	return n, known
}
