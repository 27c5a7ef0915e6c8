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
	connRefusedAndHeld(t, Refusing(t))
}

// connRefusedAndHeld checks that a connection to addr is refused, and
// that no other listener can take addr.
func connRefusedAndHeld(t *testing.T, addr string) {
	t.Helper()
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
	refusedAndHeld(t, c, addr)
}

// refusedAndHeld checks that a datagram c sends to addr is refused, and
// that no other socket can take addr.
func refusedAndHeld(t *testing.T, c net.Conn, addr string) {
	t.Helper()
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

// So does a socket made to refuse after it took a datagram
// (RefuseDatagrams), over IPv4 and IPv6: it keeps its port. Closed, as
// the client's tests did, its port was free for any socket of the tests
// running at once.
func TestRefuseDatagramsStaysRefusing(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			host := "127.0.0.1"
			if network == "udp6" {
				host = "::1"
			}
			pc, err := net.ListenPacket(network, net.JoinHostPort(host, "0"))
			if err != nil {
				t.Skipf("SKIP: no %s loopback here: %v", network, err)
			}
			defer pc.Close()
			addr := pc.LocalAddr().String()
			c, err := net.Dial("udp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write([]byte("taken\n")); err != nil {
				t.Fatal(err)
			}
			pc.SetDeadline(time.Now().Add(10 * time.Second))
			if _, _, err := pc.ReadFrom(make([]byte, 64)); err != nil {
				t.Fatalf("the first datagram, to be taken: %v", err)
			}
			if err := RefuseDatagrams(pc); err != nil {
				t.Fatal(err)
			}
			refusedAndHeld(t, c, addr)
		})
	}
}

// ListenHeld's port, once the listener is closed, refuses a connection,
// and no other listener can take it.
func TestListenHeldStaysRefusing(t *testing.T) {
	ln := ListenHeld(t)
	addr := ln.Addr().String()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ln.Close()
	connRefusedAndHeld(t, addr)
}
