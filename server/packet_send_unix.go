//go:build unix

package server

import (
	"errors"
	"net"
	"os"

	"golang.org/x/sys/unix"

	"shout/internal/sockfd"
)

// noBroadcast keeps c from sending to a broadcast address. No client
// sends from one (the kernel drops datagrams from 255.255.255.255 and
// multicast sources itself), but a forged source may be a subnet's, and
// its reply would reach every host there.
func noBroadcast(c *net.UDPConn) {
	sockfd.Control(c, func(fd int) { unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 0) })
}

// writeToNow sends b to addr on pc, without waiting if pc is a Unix
// datagram socket. Such a send waits while the receiver's queue is full
// (net.unix.max_dgram_qlen datagrams, 10 by default on Linux), so one
// client that does not read would hold the worker, and then every worker,
// and no other client would be answered. A reply the client's queue
// cannot take now is not sent, as a UDP client's kernel drops one its
// full buffer cannot take.
func writeToNow(pc net.PacketConn, b []byte, addr net.Addr) error {
	uc, ok := pc.(*net.UnixConn)
	ua, ok2 := addr.(*net.UnixAddr)
	if !ok || !ok2 {
		_, err := pc.WriteTo(b, addr)
		return err
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		for {
			serr = unix.Sendto(int(fd), b, unix.MSG_DONTWAIT, &unix.SockaddrUnix{Name: ua.Name})
			if serr != unix.EINTR {
				return true // done, or not now: never wait
			}
		}
	})
	if err != nil {
		return err
	}
	switch serr {
	case nil:
		return nil
	case unix.EAGAIN, unix.ENOBUFS:
		serr = errClientNotReading
	default:
		serr = os.NewSyscallError("sendto", serr)
	}
	return &net.OpError{Op: "write", Net: ua.Net, Source: uc.LocalAddr(), Addr: ua, Err: serr}
}

// errClientNotReading is why a Unix datagram client whose queue is full
// gets no reply.
var errClientNotReading = errors.New("the client's queue is full: it is not reading its replies")

// readFrom reads a datagram from pc into b, as pc.ReadFrom does, and
// reports whether it was longer than b, and cut: a Unix datagram socket's
// may be (up to its sender's send buffer), a UDP datagram never is longer
// than maxDatagram.
func readFrom(pc net.PacketConn, b []byte) (n int, addr net.Addr, trunc bool, err error) {
	uc, ok := pc.(*net.UnixConn)
	if !ok {
		n, addr, err = pc.ReadFrom(b)
		return n, addr, false, err
	}
	n, _, flags, ua, err := uc.ReadMsgUnix(b, nil)
	if ua != nil { // a sender with no name has no address, as ReadFrom says
		addr = ua
	}
	return n, addr, flags&unix.MSG_TRUNC != 0, err
}
