package endpoint

import (
	"net"
	"testing"
)

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

	// A fixed port whose UDP side is taken: an error, and TCP let go.
	busy, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.LocalAddr().String()
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
