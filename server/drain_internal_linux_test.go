package server

import (
	"io"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A loop that ends before it took the connections a graceful stop
// accepted for it (Close came first, or the loop failed) closes them:
// none is left open, its client waiting for good.
func TestLoopEndClosesHanded(t *testing.T) {
	s := &Server{}
	l := handLoop(t, s, 0)
	ln, raw := rawListener(t)
	client := dial(t, ln.Addr())
	q := handoff{fd: -1}
	var err error
	raw.Control(func(lfd uintptr) {
		pfd := []unix.PollFd{{Fd: int32(lfd), Events: unix.POLLIN}}
		for end := time.Now().Add(10 * time.Second); ; {
			if _, err = unix.Poll(pfd, max(int(time.Until(end).Milliseconds()), 0)); err != unix.EINTR {
				break
			}
		}
		if err == nil {
			q.fd, err = acceptFD(int(lfd), &q.sa)
		}
	})
	if err != nil {
		t.Fatalf("accepting within 10 s: %v", err)
	}
	l.handed = append(l.handed, q)
	s.mu.Lock()
	l.end()
	s.mu.Unlock()
	if len(l.handed) != 0 {
		t.Errorf("handed after end: %v", l.handed)
	}
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the client read %d, %v; want end of file: the server's side is closed", n, err)
	}
}
