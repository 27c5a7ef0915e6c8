package client_test

import (
	"bytes"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"shout/client"
)

// windowConn counts the waits for the server that Pipe begins: each read
// deadline set in the future.
type windowConn struct {
	*net.UnixConn
	windows atomic.Int32
}

func (c *windowConn) SetReadDeadline(t time.Time) error {
	if t.After(time.Now()) {
		c.windows.Add(1)
	}
	return c.UnixConn.SetReadDeadline(t)
}

// A server that reads nothing holds what was sent in the socket, where
// the system counts it unsent (a Unix socket's bytes until the server
// reads them): the first look at that count, once input was done, took
// it for the server taking input, and Pipe waited the silence out twice
// (shout connect unix://... --timeout 2s left after 4 s). One wait, and
// the server is silent.
func TestPipeSilenceOnceWithInputUnread(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // and never read
		}
	}()
	uc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c := &windowConn{UnixConn: uc.(*net.UnixConn)}
	select {
	case s := <-accepted:
		defer s.Close()
	case <-time.After(bound):
		t.Fatal("not accepted")
	}
	var out bytes.Buffer
	res, err := client.Pipe(c, strings.NewReader("hello\n"), &out, 100*time.Millisecond)
	if err != nil || !res.Silent || res.Sent != 6 {
		t.Fatalf("Pipe: %+v, %v; want all sent, and the server silent", res, err)
	}
	if n := c.windows.Load(); n != 1 {
		t.Errorf("Pipe waited for the server %d times; want once: it took none of the input", n)
	}
}
