package server

import (
	"encoding/binary"
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On a wildcard listener the kernel picks a reply's source address by its
// routes, which need not be the address the client sent to, and a client
// that checks (or a NAT, or a firewall) drops such a reply. Linux tells
// each datagram's destination (IP_PKTINFO, IPV6_RECVPKTINFO) and takes a
// reply's source address the same way.

// pktinfoSpace is room for the control messages a read can carry: on a
// dual-stack socket an IPv4 datagram comes with both kinds.
const pktinfoSpace = 128

// enablePktinfo asks the kernel to tell the destination of each datagram
// read from c, and reports whether c's socket is IPv6 and whether it
// could. c should be bound to a wildcard address: on any other, every
// datagram's destination is known already.
func enablePktinfo(c *net.UDPConn) (v6, ok bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return false, false
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		s := int(fd)
		var domain int
		if domain, serr = unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_DOMAIN); serr != nil {
			return
		}
		if v6 = domain == unix.AF_INET6; v6 {
			serr = unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
			// IPv4 datagrams on a dual-stack socket then also say which
			// local address to answer a broadcast from; not essential.
			unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		} else {
			serr = unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		}
	})
	return v6, err == nil && serr == nil
}

// parsePktinfo returns, from the control messages read with a datagram,
// the address it was sent to, the address to answer from (the same but
// for a broadcast) and, for IPv6, the interface it came in on. They are
// invalid if the messages do not say. It does not allocate.
func parsePktinfo(oob []byte, flags int) (dst, from netip.Addr, ifindex uint32) {
	if flags&unix.MSG_CTRUNC != 0 {
		return
	}
	var dst4 netip.Addr
	for len(oob) > 0 {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			break
		}
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo: interface, local address, destination.
			from = netip.AddrFrom4([4]byte(data[4:8]))
			dst4 = netip.AddrFrom4([4]byte(data[8:12]))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			// struct in6_pktinfo: destination, interface. On a dual-stack
			// socket an IPv4 one is mapped, as the source address is.
			dst = netip.AddrFrom16([16]byte(data[:16]))
			ifindex = binary.NativeEndian.Uint32(data[16:20])
		}
		oob = rest
	}
	if !dst.IsValid() {
		dst = dst4
	}
	// The local address is left 0.0.0.0 for a datagram queued before
	// IP_PKTINFO was set.
	if (!from.IsValid() || from.IsUnspecified()) && !dst.IsMulticast() {
		from = dst
	}
	return dst, from, ifindex
}

// pktinfoFrom returns a control message that sends a datagram from
// address from, written over b (at least pktinfoSpace bytes), for an IPv6
// socket or not; nil, to let the kernel choose, if from is not a unicast
// address. It does not allocate.
func pktinfoFrom(b []byte, v6 bool, from netip.Addr, ifindex uint32) []byte {
	if !from.IsValid() || from.IsUnspecified() || from.IsMulticast() {
		return nil
	}
	if !from.IsLinkLocalUnicast() || from.Is4() || from.Is4In6() {
		ifindex = 0 // let the routes choose; only a link-local address needs it
	}
	size := unix.SizeofInet4Pktinfo
	if v6 {
		size = unix.SizeofInet6Pktinfo
	}
	b = b[:unix.CmsgSpace(size)]
	clear(b)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.SetLen(unix.CmsgLen(size))
	data := b[unix.CmsgLen(0):]
	if v6 {
		h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
		a := from.As16() // IPv4 mapped, as a dual-stack socket takes it
		copy(data, a[:])
		binary.NativeEndian.PutUint32(data[16:], ifindex)
		return b
	}
	if !from.Unmap().Is4() {
		return nil
	}
	h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
	a := from.Unmap().As4()
	copy(data[4:8], a[:]) // ipi_spec_dst: the source address
	return b
}
