//go:build unix

package shouttest

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// Refusing's address refuses a connection, and stays so while the test
// runs: no other socket can take its port. A port found free and let go
// could be taken by any listener of the packages' tests running at once
// (CI runs them so), whose server the test then reached.
func TestRefusingStaysRefusing(t *testing.T) {
	addr := Refusing(t)
	if c, err := net.DialTimeout("tcp", addr, 10*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		if err == nil {
			c.Close()
		}
		t.Fatalf("dial %s: %v; want connection refused", addr, err)
	}
	if ln, err := net.Listen("tcp", addr); !errors.Is(err, syscall.EADDRINUSE) {
		if err == nil {
			ln.Close()
		}
		t.Errorf("another listener on %s: %v; want address in use, the port held", addr, err)
	}
}

// So does RefusingUDP's, a datagram there answered by the system's
// refusal (ICMP port unreachable), seen by the sender's next read.
func TestRefusingUDPStaysRefusing(t *testing.T) {
	addr := RefusingUDP(t)
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("x\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 64)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("a datagram to %s: %v; want it refused", addr, err)
	}
	if pc, err := net.ListenPacket("udp", addr); !errors.Is(err, syscall.EADDRINUSE) {
		if err == nil {
			pc.Close()
		}
		t.Errorf("another socket on %s: %v; want address in use, the port held", addr, err)
	}
}
