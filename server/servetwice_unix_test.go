//go:build unix

package server_test

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"shout/internal/shouttest"
	"shout/server"
)

// Two Serves of one listener, as net/http allows (its Server counts each
// Serve apart), then a graceful stop: neither Serve's end undoes the
// other's drain or the stop's count of it, so the clients queued on the
// listener are answered, Shutdown returns once both Serves are done with
// the listener (with a goroutine per connection, the stop waits for each
// Serve's drain; the loops drain for both under the stop's lock), both
// return ErrServerClosed, and nothing is left running or open. Over TCP
// and a Unix socket, with each driver, and the second Serve
//   - together: comes with the first held at its accept;
//   - late: (the goroutine driver) is held between tracking its
//     listener and accepting until the stop has begun;
//   - gone first: as late, tracing sockets, which ends it before it
//     accepts, and it returns while the first is held, not yet draining.
func TestShutdownTwoServesOfOneListener(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		for _, tc := range []struct {
			name          string
			late, tracing bool
		}{
			{"together", false, false},
			{"late", true, false},
			{"gone first", true, true},
		} {
			t.Run(network+"/"+tc.name, func(t *testing.T) {
				shouttest.CheckFDs(t)
				others := goleak.IgnoreCurrent()
				srv := &server.Server{Logger: new(shouttest.Log).Logger()}
				if tc.tracing {
					srv.Observer = server.NewTraceObserver(io.Discard)
				}
				ln := listenOn(t, network)
				// Each Serve signals here once it holds its accepts; a late
				// one also once it is held before it accepts. The first
				// waits for first, gone first's, before it accepts.
				reached := make(chan struct{}, 3)
				first := make(chan struct{})
				var holding atomic.Int32
				srv.HoldAccepts(func(net.Listener) {
					nth := holding.Add(1)
					reached <- struct{}{}
					if nth == 1 && tc.tracing {
						<-first
					}
				})
				served := make(chan error, 2)
				serveUntilHeld(t, srv, ln, reached, served)
				release := make(chan struct{})
				if tc.late {
					server.HoldServe(func() { reached <- struct{}{}; <-release })
					defer server.HoldServe(nil)
				}
				serveUntilHeld(t, srv, ln, reached, served)
				defer closeWithin(t, srv)
				defer close(first)

				clients := queueClients(t, ln, 8)
				stopped := shutdown(t, srv)
				var errs []error // the Serves'
				if tc.late {
					select {
					case <-srv.Stopping():
					case <-time.After(bound):
						t.Fatal("Shutdown did not begin")
					}
					close(release) // the held Serve goes on under the stop
				}
				if tc.tracing {
					select {
					case err := <-served:
						errs = append(errs, err)
					case <-time.After(bound):
						t.Fatal("the second Serve did not return")
					}
					first <- struct{}{}
				}
				answeredQueued(t, clients)
				shutdownReturned(t, stopped)
				// Both Serves were done with the listener (it is closed) before
				// Shutdown returned, and now return. (A Serve counts out of
				// the stop's wait just before it returns, as net/http's does,
				// so Shutdown may return first.)
				if c, err := net.DialTimeout(network, ln.Addr().String(), time.Second); err == nil {
					c.Close()
					t.Error("still accepting once Shutdown returned")
				}
				for len(errs) < 2 {
					select {
					case err := <-served:
						errs = append(errs, err)
					case <-time.After(bound):
						t.Fatalf("%d of the 2 Serves did not return", 2-len(errs))
					}
				}
				for _, err := range errs {
					if err != server.ErrServerClosed {
						t.Errorf("Serve: %v, want ErrServerClosed", err)
					}
				}
				if err := srv.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				select {
				case <-srv.Ended():
				case <-time.After(bound):
					t.Fatal("the server's goroutines still run after Close")
				}
				if err := settled(others); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

// listenOn listens on network's loopback: "tcp" or "unix".
func listenOn(t *testing.T, network string) net.Listener {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// closeWithin closes srv, failing t if that takes longer than bound: a
// stop's wait that can never end would hang the test.
func closeWithin(t *testing.T, srv *server.Server) {
	t.Helper()
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(bound):
		t.Errorf("Close did not return within %v", bound)
	}
}

// A Serve of a listener that another Serve is draining at a graceful
// stop, called once the stop has begun, returns ErrServerClosed and
// leaves the listener to the drain, which closes it once the queue is
// empty: closing it at once would reset the clients queued on it, whose
// connects the system had completed, whatever they had sent. The late
// Serve's listener is the same, or a ConnWrapper of it (as endpoint's TLS
// and PROXY listeners are) that says what it wraps.
func TestServeAfterShutdownBeganLeavesTheDrain(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		for _, wrapped := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/wrapped=%v", network, wrapped), func(t *testing.T) {
				shouttest.CheckFDs(t)
				srv := &server.Server{Logger: new(shouttest.Log).Logger()}
				ln := listenOn(t, network)
				reached, release := make(chan struct{}, 1), make(chan struct{})
				srv.HoldAccepts(func(net.Listener) { reached <- struct{}{}; <-release })
				served := make(chan error, 1)
				serveUntilHeld(t, srv, ln, reached, served)
				defer closeWithin(t, srv)
				held := true
				defer func() {
					if held {
						close(release)
					}
				}()

				clients := queueClients(t, ln, 4)
				for _, c := range clients {
					defer c.Close()
				}
				stopped := shutdown(t, srv)
				select {
				case <-srv.Stopping():
				case <-time.After(bound):
					t.Fatal("Shutdown did not begin")
				}
				late := ln
				if wrapped {
					late = unwrappable{ln}
				}
				if err := srv.Serve(late); err != server.ErrServerClosed {
					t.Errorf("Serve once the stop began: %v, want ErrServerClosed", err)
				}
				held = false
				close(release) // the first Serve drains the queue
				answeredQueued(t, clients)
				shutdownReturned(t, stopped)
				if c, err := net.DialTimeout(network, ln.Addr().String(), time.Second); err == nil {
					c.Close()
					t.Error("still accepting once Shutdown returned")
				}
				select {
				case err := <-served:
					if err != server.ErrServerClosed {
						t.Errorf("the first Serve: %v, want ErrServerClosed", err)
					}
				case <-time.After(bound):
					t.Fatal("the first Serve did not return")
				}
			})
		}
	}
}

// unwrappable is a ConnWrapper that wraps nothing and says what listener
// it wraps.
type unwrappable struct{ net.Listener }

func (unwrappable) WrapConn(c net.Conn) (net.Conn, error) { return c, nil }
func (l unwrappable) Unwrap() net.Listener                { return l.Listener }

// Of two Serves of one listener at a graceful stop, the one whose drain
// finds the queue empty closes the listener then, though the other,
// held before it accepts, still counts as draining it: left open, it
// would take connections until the other's accept waited out its drain's
// deadline.
func TestDrainClosesTheListenerTheOtherServeHolds(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			shouttest.CheckFDs(t)
			srv := &server.Server{Logger: new(shouttest.Log).Logger(), Engine: server.EngineGoroutine}
			ln := listenOn(t, network)
			reached, release := make(chan struct{}, 3), make(chan struct{})
			srv.HoldAccepts(func(net.Listener) { reached <- struct{}{} })
			served := make(chan error, 2)
			serveUntilHeld(t, srv, ln, reached, served)
			server.HoldServe(func() { reached <- struct{}{}; <-release })
			defer server.HoldServe(nil)
			serveUntilHeld(t, srv, ln, reached, served) // held before it accepts
			defer closeWithin(t, srv)
			held := true
			defer func() {
				if held {
					close(release)
				}
			}()

			c := shouttest.Dial(t, network, ln.Addr().String(), bound)
			defer c.Close()
			if _, err := fmt.Fprintf(c, "queued\n"); err != nil {
				t.Fatal(err)
			}
			if tl, ok := ln.(*net.TCPListener); ok {
				backlogHolds(t, tl, 1)
			}
			stopped := shutdown(t, srv)
			select {
			case err := <-served:
				if err != server.ErrServerClosed {
					t.Errorf("the first Serve: %v, want ErrServerClosed", err)
				}
			case <-time.After(bound):
				t.Fatal("the first Serve did not return")
			}
			c.SetReadDeadline(time.Now().Add(bound))
			if got, err := io.ReadAll(c); err != nil || string(got) != "QUEUED\n" {
				t.Errorf("the queued client: got %q, %v; want %q, then end of file", got, err, "QUEUED\n")
			}
			c.Close() // or the stop lingers for it
			if c, err := net.DialTimeout(network, ln.Addr().String(), time.Second); err == nil {
				c.Close()
				t.Error("still accepting once the first Serve's drain found the queue empty")
			}
			held = false
			close(release)
			select {
			case err := <-served:
				if err != server.ErrServerClosed {
					t.Errorf("the second Serve: %v, want ErrServerClosed", err)
				}
			case <-time.After(bound):
				t.Fatal("the second Serve did not return")
			}
			shutdownReturned(t, stopped)
		})
	}
}
