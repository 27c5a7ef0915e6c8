package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"shout/internal/shouttest"
	"shout/server"
)

// As with net/http, a Serve that returns (here: its listener closed by
// the caller) leaves the connections it accepted served; once they have
// closed too, and ServePacket has returned (its socket closed by the
// caller), nothing of the server runs and none of its descriptors is
// open, though neither Shutdown nor Close was called. A later Serve
// starts again what it needs, and Close is still clean after.
func TestNothingLeftOnceNothingServed(t *testing.T) {
	others := goleak.IgnoreCurrent()
	fdsBefore := openFDs()
	hook, states := states()
	// An IdleTimeout that never fires: the goroutine driver starts a
	// watcher for it.
	srv := &server.Server{ConnState: hook, IdleTimeout: time.Hour, Logger: discard()}
	for round := range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served, servedPackets := make(chan error, 1), make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		go func() { servedPackets <- srv.ServePacket(pc) }()
		if got := exchangeUDP(t, pc.LocalAddr().String(), "u"); got != "U" {
			t.Fatalf("round %d: datagram answered %q, want U", round, got)
		}
		pc.Close()
		c := dial(t, ln.Addr().String())
		exchange(t, c, "a", "A")
		waitState(t, states, server.StateNew)
		ln.Close()
		select {
		case err := <-served:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("round %d: Serve: %v, want net.ErrClosed", round, err)
			}
		case <-time.After(bound):
			t.Fatalf("round %d: Serve did not return", round)
		}
		exchange(t, c, "b", "B") // still served
		select {
		case err := <-servedPackets:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("round %d: ServePacket: %v, want net.ErrClosed", round, err)
			}
		case <-time.After(bound):
			t.Fatalf("round %d: ServePacket did not return", round)
		}
		c.Close()
		waitState(t, states, server.StateClosed)
		select {
		case <-srv.Ended():
		case <-time.After(bound):
			t.Fatalf("round %d: with nothing served, the server's goroutines still run %v later", round, bound)
		}
		if err := settled(others); err != nil {
			t.Errorf("round %d: %v", round, err)
		}
		if fds := openFDs(); fds > fdsBefore {
			t.Errorf("round %d: %d descriptors open, %d before", round, fds, fdsBefore)
		}
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// settled is goleak.Find, given up to bound for goroutines that have
// signalled their end (Ended) to return: goleak's own retries last half
// a second, which a loaded machine can take to schedule them.
func settled(others goleak.Option) error {
	deadline := time.Now().Add(bound)
	for {
		err := goleak.Find(others)
		if err == nil || time.Now().After(deadline) {
			return err
		}
	}
}

// openFDs counts the process's open descriptors, where /proc tells;
// elsewhere it is 0.
func openFDs() int {
	fds, _ := os.ReadDir("/proc/self/fd")
	return len(fds)
}

// After Shutdown or Close, on a Server that served or on a zero Server,
// Serve and ServePacket return ErrServerClosed at once and close what
// they were given, as net/http's Serve does.
func TestServeAfterStop(t *testing.T) {
	stops := []struct {
		name string
		stop func(*server.Server) error
	}{
		{"Shutdown", func(s *server.Server) error { return s.Shutdown(context.Background()) }},
		{"Close", (*server.Server).Close},
	}
	for _, st := range stops {
		for _, served := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, served %v", st.name, served), func(t *testing.T) {
				shouttest.CheckFDs(t)
				srv := &server.Server{Logger: discard()}
				if served {
					shouttest.Start(t, srv)
				}
				if err := st.stop(srv); err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				if err := srv.Serve(ln); err != server.ErrServerClosed {
					t.Errorf("Serve: %v, want ErrServerClosed", err)
				}
				if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
					t.Errorf("the listener after Serve: Accept: %v, want it closed", err)
				}
				pc, err := net.ListenPacket("udp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				if err := srv.ServePacket(pc); err != server.ErrServerClosed {
					t.Errorf("ServePacket: %v, want ErrServerClosed", err)
				}
				if _, _, err := pc.ReadFrom(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
					t.Errorf("the packet conn after ServePacket: ReadFrom: %v, want it closed", err)
				}
				// Stopping again is harmless, and says nothing failed.
				for _, again := range stops {
					if err := again.stop(srv); err != nil {
						t.Errorf("%s again: %v", again.name, err)
					}
				}
			})
		}
	}
}

// Shutdown called twice at once, and Close during a Shutdown: each
// returns once every connection is closed, and the connection is closed
// once.
func TestStopsAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		second func(*server.Server) error
		want   server.Reason
	}{
		{"Shutdown twice", func(s *server.Server) error { return s.Shutdown(context.Background()) }, server.ReasonShutdown},
		{"Close during Shutdown", (*server.Server).Close, server.ReasonShutdown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shouttest.CheckFDs(t)
			obs := &recorder{}
			srv := &server.Server{Observer: obs, Logger: discard(), Linger: time.Hour}
			addr := shouttest.Start(t, srv)
			c := dial(t, addr)
			exchange(t, c, "a", "A")
			first := shutdownCtx(context.Background(), srv)
			// The client reads end of file: the stop has begun, and
			// lingers on it (it sends no end of file of its own).
			if got, err := io.ReadAll(c); err != nil || len(got) != 0 {
				t.Fatalf("after Shutdown: read %q, %v; want end of file", got, err)
			}
			second := make(chan error, 1)
			go func() { second <- tc.second(srv) }()
			if tc.name == "Shutdown twice" {
				c.Close() // what both wait for
			}
			for i, ch := range []<-chan error{first, second} {
				select {
				case err := <-ch:
					if err != nil {
						t.Errorf("stop %d: %v", i+1, err)
					}
				case <-time.After(bound):
					t.Fatalf("stop %d did not return", i+1)
				}
			}
			if got := obs.waitClose(t); got.Reason != tc.want {
				t.Errorf("closed for %v, want %v", got.Reason, tc.want)
			}
			closedOnce(t, obs)
		})
	}
}

// A Shutdown whose context ends returns its error once every connection
// is closed (at once, then); a Close after it is clean.
func TestShutdownContextEnds(t *testing.T) {
	shouttest.CheckFDs(t)
	obs := &recorder{}
	srv := &server.Server{Observer: obs, Logger: discard(), Linger: time.Hour}
	addr := shouttest.Start(t, srv)
	c := dial(t, addr)
	exchange(t, c, "a", "A")
	ctx, cancel := context.WithCancel(context.Background())
	stopped := shutdownCtx(ctx, srv)
	if got, err := io.ReadAll(c); err != nil || len(got) != 0 { // lingering on it now
		t.Fatalf("after Shutdown: read %q, %v; want end of file", got, err)
	}
	cancel()
	if err := shutdownResult(t, stopped); err != context.Canceled {
		t.Errorf("Shutdown: %v, want context.Canceled", err)
	}
	if got := obs.waitClose(t); got.Reason != server.ReasonShutdown {
		t.Errorf("closed for %v, want shutdown", got.Reason)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close after: %v", err)
	}
	closedOnce(t, obs)
}

// closedOnce fails t if obs, its one close taken (waitClose), was told
// of another once every stop has returned.
func closedOnce(t *testing.T, obs *recorder) {
	t.Helper()
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if n := len(obs.closes); n != 0 {
		t.Errorf("%d more closes, want none", n)
	}
}

// Listeners served one after another, and two at a time, on one Server:
// each is served whether the loops are ending as the one before it
// ends, or have ended, and nothing is left once all are done.
func TestServeAgainAsLoopsEnd(t *testing.T) {
	shouttest.CheckFDs(t)
	others := goleak.IgnoreCurrent()
	srv := &server.Server{Logger: discard()}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Go(func() {
			for i := range 20 {
				if err := serveOnce(srv, fmt.Sprintf("%d.%d", w, i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	select {
	case <-srv.Ended():
	case <-time.After(bound):
		t.Fatalf("with nothing served, the server's goroutines still run %v later", bound)
	}
	if err := settled(others); err != nil {
		t.Error(err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// serveOnce serves a new listener with srv, exchanges msg with one client
// and closes the listener, checking what Serve returns.
func serveOnce(srv *server.Server, msg string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), bound)
	if err != nil {
		ln.Close()
		<-served
		return err
	}
	c.SetDeadline(time.Now().Add(bound))
	io.WriteString(c, "x"+msg)
	got := make([]byte, 1+len(msg))
	_, err = io.ReadFull(c, got)
	c.Close()
	ln.Close()
	if err != nil || string(got) != "X"+msg {
		<-served
		return fmt.Errorf("listener %s: got %q, %v", msg, got, err)
	}
	select {
	case err := <-served:
		if !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("listener %s: Serve: %v, want net.ErrClosed", msg, err)
		}
	case <-time.After(bound):
		return fmt.Errorf("listener %s: Serve did not return", msg)
	}
	return nil
}

// nilListener breaks net.Listener's contract: its Accept returns neither
// a connection nor an error.
type nilListener struct{ net.Listener }

func (nilListener) Accept() (net.Conn, error) { return nil, nil }

// A listener whose Accept returns neither a connection nor an error ends
// Serve with an error that says so; it used to panic, taking the program
// down, on the connection's address.
func TestAcceptNothingEndsServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &server.Server{Logger: discard()}
	defer srv.Close()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("panic: %v", p)
			}
		}()
		done <- srv.Serve(nilListener{ln})
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no connection and no error") {
			t.Errorf("Serve: %v, want an error saying Accept returned no connection and no error", err)
		}
	case <-time.After(bound):
		t.Fatal("Serve did not return")
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the listener after Serve: Accept: %v, want it closed", err)
	}
}
