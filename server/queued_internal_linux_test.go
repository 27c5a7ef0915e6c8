package server

import (
	"io"
	"net"
	"testing"
	"time"
)

// The timeout sweeps' look at a send queue tells what the client has
// taken, and allocates nothing: they make it for every connection whose
// write waits, each sweep.
func TestSendQueueLookAllocatesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	const n = 1000
	if _, err := c.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(peer, make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) {
		// The peer's kernel acknowledges what its reader took; the
		// first looks may come before the acknowledgement does.
		var look sendLook
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
			if look = sendQueueFD(int(fd)); look.acked >= n {
				break
			}
		}
		if look.acked < n || look.unsent != 0 {
			t.Errorf("the look says %d acknowledged, %d queued; want at least %d acknowledged, none queued", look.acked, look.unsent, n)
		}
		if a := testing.AllocsPerRun(100, func() { sendQueueFD(int(fd)) }); a != 0 {
			t.Errorf("a look at the send queue allocates %v times; want none", a)
		}
	})
}
