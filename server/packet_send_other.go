//go:build !unix

package server

import "net"

// noBroadcast leaves c as it is: off Unix, ServePacket may send replies
// to a broadcast address (see packet_send_unix.go).
func noBroadcast(*net.UDPConn) {}

// writeToNow sends b to addr on pc (see packet_send_unix.go: only Unix
// datagram sockets wait for their receiver).
func writeToNow(pc net.PacketConn, b []byte, addr net.Addr) error {
	_, err := pc.WriteTo(b, addr)
	return err
}

// readFrom reads a datagram from pc into b (see packet_send_unix.go).
func readFrom(pc net.PacketConn, b []byte) (int, net.Addr, bool, error) {
	n, addr, err := pc.ReadFrom(b)
	return n, addr, false, err
}
