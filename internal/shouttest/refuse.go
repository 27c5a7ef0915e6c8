package shouttest

import (
	"fmt"
	"net"
	"syscall"
)

// RefuseDatagrams makes pc, a UDP socket bound to an address of its own,
// refuse every datagram from then on, keeping its port: it is connected
// to itself, and takes datagrams from that address alone, which nothing
// sends from; one from anywhere else finds no socket, and the system
// refuses it (ICMP port unreachable), as at a port where nothing
// listens. Closing pc instead lets the port go, for any socket of the
// tests running at once to take, whose server the test then reached.
func RefuseDatagrams(pc net.PacketConn) error {
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return fmt.Errorf("refuse datagrams: %T is not a UDP socket", pc)
	}
	a, ok := uc.LocalAddr().(*net.UDPAddr)
	if !ok || a.IP.IsUnspecified() {
		return fmt.Errorf("refuse datagrams: %v is not an address of its own", uc.LocalAddr())
	}
	var sa syscall.Sockaddr
	if ip4 := a.IP.To4(); ip4 != nil {
		sa4 := &syscall.SockaddrInet4{Port: a.Port}
		copy(sa4.Addr[:], ip4)
		sa = sa4
	} else {
		sa6 := &syscall.SockaddrInet6{Port: a.Port}
		copy(sa6.Addr[:], a.IP.To16())
		sa = sa6
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return fmt.Errorf("refuse datagrams at %v: %w", a, err)
	}
	var cerr error
	if err := rc.Control(func(fd uintptr) { cerr = connect(fd, sa) }); err != nil {
		return fmt.Errorf("refuse datagrams at %v: %w", a, err)
	}
	if cerr != nil {
		return fmt.Errorf("refuse datagrams at %v: connect: %w", a, cerr)
	}
	return nil
}
