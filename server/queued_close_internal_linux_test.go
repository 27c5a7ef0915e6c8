package server

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A forced close ends a goroutine's wait for the replies queued after its
// client's end of file at once: it waited in a sleep of lingerEvery
// (up to a second) that nothing woke, and Close, which waits for every
// goroutine, waited for it, past Shutdown's context too. Here the wait
// looks once an hour, and its write timeout (the client takes nothing)
// lasts past the test's bound.
func TestLingerQueuedEndsAtClose(t *testing.T) {
	waiting := make(chan struct{})
	var once sync.Once
	queuedEvery = func(time.Duration) time.Duration {
		once.Do(func() { close(waiting) })
		return time.Hour
	}
	t.Cleanup(func() { queuedEvery = lingerEvery })
	const bound = 10 * time.Second
	srv := &Server{
		Engine: EngineGoroutine,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Linger: bound,
		// Without a write timeout the end of file closes at once; the
		// client that takes nothing is reset after it.
		WriteTimeout: 3 * bound,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<10) })
		return nil
	}}
	nc, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cc := nc.(*net.TCPConn)
	// Replies far more than its window, which it never reads.
	cc.SetWriteDeadline(time.Now().Add(bound))
	if _, err := cc.Write([]byte(strings.Repeat("a", 128<<10))); err != nil {
		t.Fatal(err)
	}
	if err := cc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-waiting:
	case <-time.After(bound):
		t.Fatalf("the server did not wait for the replies queued within %v", bound)
	}
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(bound):
		t.Fatalf("Close did not return within %v", bound)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve returned %v, want ErrServerClosed", err)
	}
}
