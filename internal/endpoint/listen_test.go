package endpoint

import (
	"net"
	"testing"
)

// busyHost is a loopback address that no other test uses, so that no
// connection's ephemeral port can hold a TCP port the test expects free
// (on 127.0.0.1, after a full test run, one did about 3% of the time).
const busyHost = "127.0.0.77"

func TestListenPair(t *testing.T) {
	ln, pc, err := ListenPair("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer pc.Close()
	if ln.Addr().String() != pc.LocalAddr().String() {
		t.Errorf("tcp on %s, udp on %s", ln.Addr(), pc.LocalAddr())
	}
}

// A fixed port whose UDP side is taken: an error, and TCP let go.
func TestListenPairUDPTaken(t *testing.T) {
	addr, busy := udpTakenTCPFree(t)
	defer busy.Close()
	if ln, pc, err := ListenPair(addr); err == nil {
		ln.Close()
		pc.Close()
		t.Fatalf("ListenPair(%s) with its UDP port taken: no error", addr)
	}
	again, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("TCP port left bound after the failure: %v", err)
	}
	again.Close()
}

// udpTakenTCPFree returns an address on busyHost whose UDP port is held by
// the returned socket and whose TCP port was just held by this test and
// let go, so nothing else holds it.
func udpTakenTCPFree(t *testing.T) (string, net.PacketConn) {
	t.Helper()
	for range 20 { // the UDP port may be taken by someone else: try another
		hold, err := net.Listen("tcp", busyHost+":0")
		if err != nil {
			t.Skipf("no loopback address %s here: %v", busyHost, err)
		}
		addr := hold.Addr().String()
		busy, err := net.ListenPacket("udp", addr)
		hold.Close() // a listener that accepted nothing leaves no TIME_WAIT
		if err == nil {
			return addr, busy
		}
	}
	t.Fatalf("no port on %s free for both TCP and UDP in 20 tries", busyHost)
	return "", nil
}
