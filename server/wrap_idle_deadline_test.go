package server_test

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"shout/internal/shouttest"
	"shout/server"
)

// A read deadline a wrapper sets once the idle timeout has fired during
// its wrap (a step after a read the timeout cut, as a PROXY header's wait
// then a handshake's) does not undo the timeout: the wrapper's next read
// fails at once, not at the wrapper's deadline (an hour here).
func TestWrapDeadlineAfterIdleFiredKeepsIt(t *testing.T) {
	second := make(chan error, 1)
	srv := &server.Server{IdleTimeout: 100 * time.Millisecond, Logger: discard(), WrapConn: func(c net.Conn) (net.Conn, error) {
		buf := make([]byte, 1)
		if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) { // nothing comes: the idle timeout ends it
			second <- errors.New("the first read ended otherwise")
			return nil, err
		}
		c.SetReadDeadline(time.Now().Add(time.Hour))
		_, err := c.Read(buf)
		second <- err
		return nil, err
	}}
	addr := shouttest.Start(t, srv)
	shouttest.Dial(t, "tcp", addr, bound)
	select {
	case err := <-second:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("the wrapper's second read: %v, want %v (the idle timeout's)", err, os.ErrDeadlineExceeded)
		}
	case <-time.After(bound):
		t.Fatalf("the wrapper's second read waited %v: its deadline undid the idle timeout", bound)
	}
}
