//go:build unix

package admin

import (
	"net"
	"syscall"
	"testing"
	"time"

	xunix "golang.org/x/sys/unix"
)

// A connection that has waited evictGrace on its client, whose client has
// sent what the process has not read (its goroutine has not run: a
// keep-alive request come), does not wait on its client: it waits from
// when the listener asked, and, once the process has read what came, a
// full listener closes it evictGrace after that, not before.
func TestLimitListenerWaitRestartsWhileClientsBytesUnread(t *testing.T) {
	l := testListener(t, 1, time.Second, nil)
	client, ch := connect(t, l)
	a := acceptedConn(t, ch)
	if _, err := client.Write([]byte("GET")); err != nil {
		t.Fatal(err)
	}
	readable(t, a.Conn)
	asked := time.Now().Add(time.Hour) // long past a's grace
	waitingLongest := func(now time.Time) (*limitConn, time.Time) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.longestWaiting(now)
	}
	if v, next := waitingLongest(asked); v != nil || !next.Equal(asked.Add(evictGrace)) {
		t.Fatalf("the client's bytes unread: a closed %v, next %v; want it kept, next the grace from when the listener asked (%v)", v == a, next, asked.Add(evictGrace))
	}
	if n, err := a.Read(make([]byte, 3)); n != 3 || err != nil {
		t.Fatalf("read %d, %v; want 3 bytes", n, err)
	}
	if v, _ := waitingLongest(asked); v == a {
		t.Error("with the client's bytes read, a full listener closes the connection at once; want it kept for the grace from when it asked")
	}
	if v, _ := waitingLongest(asked.Add(evictGrace)); v != a {
		t.Errorf("with the client's bytes read, a full listener closes a the grace after it asked: %v; want it closed", v == a)
	}
}

// readable waits for c's socket to have bytes to read, up to bound.
func readable(t *testing.T, c net.Conn) {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	rc.Control(func(fd uintptr) {
		fds := []xunix.PollFd{{Fd: int32(fd), Events: xunix.POLLIN}}
		for end := time.Now().Add(bound); ; {
			n, err = xunix.Poll(fds, int(time.Until(end).Milliseconds()))
			if err != xunix.EINTR || !time.Now().Before(end) {
				return
			}
		}
	})
	if err != nil || n == 0 {
		t.Fatalf("the client's bytes not readable within %v (%v)", bound, err)
	}
}
