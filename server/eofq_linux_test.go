package server_test

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"shout/internal/shouttest"
	"shout/server"
)

// A client that keeps taking its replies, however long it takes, gets
// every one and then end of file: the close that waits for replies still
// queued resets them away only for a client that took none of them for
// WriteTimeout (review r38 of c95550f saw each of these clients reset).
//   - After its end of file, a client reading slowly is not cut at 30
//     Lingers: it was reset once they passed.
//   - With WriteTimeout 0 the server closes at its end of file as it
//     always did, resetting nothing: a client that paused longer than
//     Linger before reading was reset.
//   - A lingering close (here at the idle timeout) that reaches its bound
//     of 30 Lingers while the client still takes its replies closes with
//     a FIN behind them: it reset them.
//
// The client's receive buffer is far smaller than the replies, and it
// reads a little at a time, so that taking them lasts far longer than 30
// Lingers (Linger is short); its pace only makes the old resets come, the
// test asserts no time.
func TestQueuedRepliesReachASlowReader(t *testing.T) {
	for _, tc := range []struct {
		name         string
		writeTimeout time.Duration
		idle         time.Duration
		halfClose    bool
		pause, gap   time.Duration
		want         server.Reason
	}{
		{"end of file, read slowly past 30 Lingers", bound, 0, true, 0, 10 * time.Millisecond, server.ReasonEOF},
		{"end of file, no write timeout, a pause longer than Linger", 0, 0, true, 200 * time.Millisecond, 0, server.ReasonEOF},
		{"idle timeout, read slowly past 30 Lingers", bound, 50 * time.Millisecond, false, 0, 10 * time.Millisecond, server.ReasonIdleTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &queuedObserver{more: make(chan struct{}, 1), closed: make(chan server.ConnInfo, 64)}
			addr := shouttest.Start(t, &server.Server{
				Logger:       discard(),
				Observer:     obs,
				Linger:       5 * time.Millisecond, // 30 of them: 150 ms
				WriteTimeout: tc.writeTimeout,
				IdleTimeout:  tc.idle,
			})
			c := dialRcvbuf(t, addr, 4<<10)
			const n = 256 << 10
			wrote := make(chan error, 1)
			go func() {
				_, err := c.Write([]byte(strings.Repeat("a", n)))
				if err == nil && tc.halfClose {
					err = c.CloseWrite()
				}
				wrote <- err
			}()
			if tc.pause > 0 {
				// Every reply written, queued behind the client's window,
				// and its end of file sent: then it pauses.
				if err := <-wrote; err != nil {
					t.Fatal(err)
				}
				if err := obs.wait(t, n); err != nil {
					t.Fatalf("a reply failed: %v", err)
				}
				time.Sleep(tc.pause)
			}
			got := 0
			buf := make([]byte, 4<<10)
			c.SetReadDeadline(time.Now().Add(2 * bound))
			var err error
			for got <= n {
				var k int
				k, err = c.Read(buf)
				got += k
				if err != nil {
					break
				}
				time.Sleep(tc.gap)
			}
			if got != n || !errors.Is(err, io.EOF) {
				t.Fatalf("the client read %d bytes of %d replies, then %v (reset: %v); want all, then end of file",
					got, n, err, errors.Is(err, syscall.ECONNRESET))
			}
			if tc.pause == 0 {
				if err := <-wrote; err != nil {
					t.Fatal(err)
				}
			}
			select {
			case info := <-obs.closed:
				if info.Reason != tc.want {
					t.Errorf("closed for %v, want %v", info.Reason, tc.want)
				}
			case <-time.After(bound):
				t.Fatalf("the server did not close the connection within %v", bound)
			}
		})
	}
}

// dialRcvbuf dials addr with a receive buffer of rcvbuf bytes, set before
// the connect so that the window offered is that small.
func dialRcvbuf(t *testing.T, addr string, rcvbuf int) *net.TCPConn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}
