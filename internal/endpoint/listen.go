package endpoint

import (
	"net"
	"strconv"
)

// pairTries bounds how many free ports ListenPair tries when asked for
// port 0 and the UDP port is taken.
const pairTries = 20

// ListenPair listens for TCP and UDP on the same address. With port 0 the
// UDP port is the one TCP got; if another program holds that one for UDP,
// ListenPair tries other free ports.
func ListenPair(address string) (net.Listener, net.PacketConn, error) {
	_, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, nil, err
	}
	tries := 1
	if p, err := strconv.Atoi(port); err == nil && p == 0 {
		tries = pairTries
	}
	for try := 1; ; try++ {
		ln, err := net.Listen("tcp", address)
		if err != nil {
			return nil, nil, err
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err == nil {
			return ln, pc, nil
		}
		ln.Close()
		if try == tries {
			return nil, nil, err
		}
	}
}
