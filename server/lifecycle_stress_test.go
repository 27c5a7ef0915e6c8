package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"shout/internal/shouttest"
	"shout/server"
)

// Several goroutines serve listener after listener on one Server, each
// listener's client kept across its close (so that the event loops end
// with connections and without, and start again, and the timeout watcher
// ends and starts again), while a stop comes in the middle. Every
// exchange before the stop is answered, every Serve returns net.ErrClosed
// (or ErrServerClosed, once stopped), the stop returns, and nothing of
// the server is left.
func TestLifecycleStress(t *testing.T) {
	for _, stop := range []struct {
		name string
		stop func(*server.Server) error
	}{
		{"Shutdown", func(s *server.Server) error { return s.Shutdown(context.Background()) }},
		{"Close", (*server.Server).Close},
	} {
		t.Run(stop.name, func(t *testing.T) {
			shouttest.CheckFDs(t)
			others := goleak.IgnoreCurrent()
			srv := &server.Server{IdleTimeout: time.Hour, Linger: -1, Logger: discard()}
			const workers, rounds = 4, 8
			var (
				wg       sync.WaitGroup
				done     atomic.Int32 // rounds done, by every worker
				half     = make(chan struct{})
				stopping = make(chan struct{}) // closed as the stop is called
				errs     = make(chan error, workers)
			)
			for w := range workers {
				wg.Go(func() {
					for i := range rounds {
						err := serveKept(srv, fmt.Sprintf("%d.%d", w, i))
						if err != nil {
							select {
							case <-stopping: // the stop's doing
							default:
								errs <- err
							}
							return
						}
						if done.Add(1) == workers*rounds/2 {
							close(half)
						}
					}
				})
			}
			stopped := make(chan error, 1)
			go func() {
				select {
				case <-half:
				case <-time.After(bound): // the workers failed: they say why
				}
				close(stopping)
				stopped <- stop.stop(srv)
			}()
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			select {
			case err := <-stopped:
				if err != nil {
					t.Errorf("%s: %v", stop.name, err)
				}
			case <-time.After(bound):
				t.Fatalf("%s did not return", stop.name)
			}
			select {
			case <-srv.Ended():
			case <-time.After(bound):
				t.Errorf("%s returned with the server's goroutines still running %v later", stop.name, bound)
			}
			if err := settled(others); err != nil {
				t.Error(err)
			}
		})
	}
}

// serveKept serves a new listener with srv, exchanges msg with a client,
// closes the listener and, once Serve has returned, exchanges msg again
// with the same client before it closes it. Once srv has been stopped,
// it fails at some step, as the stop closes what it serves.
func serveKept(srv *server.Server, msg string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), bound)
	if err != nil {
		ln.Close()
		return errors.Join(err, <-served)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	swap := func(what string) error {
		io.WriteString(c, what+msg)
		got := make([]byte, len(what)+len(msg))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != ref(what+msg) {
			return fmt.Errorf("client of %s: got %q, %v; want %q", msg, got, err, ref(what+msg))
		}
		return nil
	}
	if err := swap("x"); err != nil {
		ln.Close()
		return errors.Join(err, <-served)
	}
	ln.Close()
	select {
	case err := <-served:
		if errors.Is(err, server.ErrServerClosed) {
			return err
		}
		if !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("listener %s: Serve: %v, want net.ErrClosed", msg, err)
		}
	case <-time.After(bound):
		return fmt.Errorf("listener %s: Serve did not return", msg)
	}
	return swap("y") // served on, its listener gone
}

// The timeouts still fire once the timeout watcher (and the event loops,
// which time their own connections) have ended with nothing served and
// started again with the next Serve: an idle client of the second
// listener is closed.
func TestIdleTimeoutAfterServeAgain(t *testing.T) {
	shouttest.CheckFDs(t)
	obs := &recorder{}
	srv := &server.Server{Observer: obs, IdleTimeout: time.Second, Logger: discard()}
	defer srv.Close()
	if err := serveOnce(srv, "1"); err != nil {
		t.Fatal(err)
	}
	obs.waitClose(t)
	select {
	case <-srv.Ended():
	case <-time.After(bound):
		t.Fatalf("with nothing served, the server's goroutines still run %v later", bound)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, srv, ln)
	c := dial(t, ln.Addr().String())
	exchange(t, c, "b", "B")
	if got, err := io.ReadAll(c); len(got) != 0 || err != nil {
		t.Errorf("the idle client read %q, %v; want end of file", got, err)
	}
	c.Close() // the close waits for it
	if got := obs.waitClose(t); got.Reason != server.ReasonIdleTimeout {
		t.Errorf("the idle client closed for %v, want the idle timeout", got.Reason)
	}
}
