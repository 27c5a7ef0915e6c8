//go:build linux

package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A listener the loops no longer accept from is forgotten: a server
// that serves one listener after another keeps none of those closed.
func TestLoopListenersForgotten(t *testing.T) {
	if testEngine == EngineGoroutine {
		t.Skip("the loops' own bookkeeping")
	}
	s := &Server{Logger: slog.New(slog.DiscardHandler)}
	defer s.Close()
	for i := range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- s.Serve(ln) }()
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		got := make([]byte, 1)
		if _, err := c.Write([]byte("a")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "A" {
			t.Fatalf("listener %d: got %q, %v", i, got, err)
		}
		c.Close()
		ln.Close()
		select {
		case err := <-served:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return")
		}
	}
	s.mu.Lock()
	lls := *s.loops.listeners.Load()
	s.mu.Unlock()
	kept := 0
	for _, ll := range lls {
		if ll != nil {
			kept++
		}
	}
	if kept != 0 || len(lls) > 1 {
		t.Errorf("after 3 listeners served and closed, the loops keep %d of them in %d places; want none, in at most 1", kept, len(lls))
	}
}

// A connection accepted from a listener given the options inherits them,
// and is seen to; one from a listener without them is seen not to, and
// so is every later one, which then has them set one by one.
func TestListenerOptionsInherited(t *testing.T) {
	for _, onListener := range []bool{true, false} {
		lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(lfd)
		if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			t.Fatal(err)
		}
		if err := unix.Listen(lfd, 8); err != nil {
			t.Fatal(err)
		}
		if onListener && !setOptions(lfd) {
			t.Fatal("setOptions failed on a listener")
		}
		sa, err := unix.Getsockname(lfd)
		if err != nil {
			t.Fatal(err)
		}
		ll := &loopListener{}
		for i := range 2 {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			if got := ll.inherited(fd); got != onListener {
				t.Errorf("listener given the options %v: connection %d inherited them %v", onListener, i, got)
			}
			if !onListener {
				setOptions(fd)
			}
			for _, o := range connOptions {
				if v, err := unix.GetsockoptInt(fd, o.level, o.opt); err != nil || v != o.v {
					t.Errorf("listener given the options %v: connection %d has option %d at %d, %v; want %d", onListener, i, o.opt, v, err, o.v)
				}
			}
		}
	}
}
