package server_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"shout/internal/shouttest"
	"shout/server"
)

// A client that sends, shuts its write side and never reads leaves its
// replies queued in the server's socket. Closed with them there, the
// socket would live on in the kernel as an orphan holding them (up to
// the send buffer, megabytes over loopback) for as long as the client
// keeps its window shut: memory no --max-conns counts, freed only when
// the kernel gives up probing, minutes later. So a close after the
// client stopped taking its replies resets the connection, as a write
// timeout does, and the client's socket is closed at once. It was left
// in FIN_WAIT2, the server's replies and FIN queued behind its shut
// window: 3,000 such clients held 1.2 GB of the kernel's TCP memory
// after the server had closed every one.
func TestClosedWithRepliesQueuedResets(t *testing.T) {
	closed := make(chan struct{}, 1)
	addr := shouttest.Start(t, &server.Server{
		Logger:       discard(),
		Linger:       20 * time.Millisecond,
		WriteTimeout: 50 * time.Millisecond, // the client takes nothing: stuck at once
		ConnState: func(_ net.Conn, st server.ConnState) {
			if st == server.StateClosed {
				closed <- struct{}{}
			}
		},
	})
	fd := rawDialBuffer(t, addr, 4<<10) // its window far smaller than the replies
	t.Cleanup(func() { unix.Close(fd) })
	msg := []byte(strings.Repeat("a", 128<<10))
	for sent := 0; sent < len(msg); {
		if !wait(t, fd, unix.POLLOUT, bound) {
			t.Fatalf("the server took %d of %d bytes within %v", sent, len(msg), bound)
		}
		n, err := unix.Write(fd, msg[sent:])
		if err == unix.EAGAIN {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sent += n
	}
	if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(bound):
		t.Fatalf("the server did not close the connection within %v", bound)
	}
	// The reset is sent as the server closes; over loopback it comes at
	// once, but a busy machine may deliver it a little later.
	var state uint8
	for end := time.Now().Add(bound); time.Now().Before(end); time.Sleep(time.Millisecond) {
		ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			t.Fatal(err)
		}
		if state = ti.State; state == tcpClose {
			return
		}
	}
	t.Errorf("the client's socket is in TCP state %d %v after the server closed with replies queued that it took none of; want %d (closed by a reset)",
		state, bound, tcpClose)
}

// tcpClose is Linux's TCP_CLOSE, a socket's state once reset.
const tcpClose = 7
