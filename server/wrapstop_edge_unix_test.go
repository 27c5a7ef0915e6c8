//go:build unix

package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"shout/internal/shouttest"
	"shout/server"
)

// partialWraps are the first bytes of each of wraps' wraps, and no more:
// a client whose wrap never finishes.
var partialWraps = map[string]string{
	"tls":   "\x16\x03\x01\x00\x80", // a handshake record's header, without its record
	"proxy": "PROXY TCP4 203.0.113.7 ",
}

// startWrap serves w's listener with srv, connects a client that sends
// what of its wrap partialWraps has (none, if !partial), and returns it
// once the server has begun to wrap it, with the channel Serve's error
// comes on.
func startWrap(t *testing.T, srv *server.Server, w wrap, partial bool) (net.Conn, <-chan error) {
	t.Helper()
	l := wrapSignalled{w.listen(t), make(chan struct{}, 1)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	c := shouttest.Dial(t, "tcp", l.Addr().String(), bound)
	if partial {
		if _, err := io.WriteString(c, partialWraps[w.name]); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-l.wrapping:
	case err := <-served:
		t.Fatalf("Serve: %v", err)
	case <-time.After(bound):
		t.Fatalf("no wrap within %v", bound)
	}
	return c, served
}

// A graceful stop waits for a wrap under way only until the connection is
// newcomerWait old, not for the wrapper's own time-out (HandshakeTimeout,
// an hour here): a client that began its TLS handshake or PROXY header,
// or sent nothing, and never finishes, does not hold the stop up for it.
func TestShutdownEndsAWrapThatNeverFinishes(t *testing.T) {
	for _, w := range wraps(t) {
		w.opts.HandshakeTimeout = time.Hour
		for _, partial := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/partial=%v", w.name, partial), func(t *testing.T) {
				srv := &server.Server{Logger: discard(), Linger: time.Hour}
				srv.SetNewcomerWait(100 * time.Millisecond)
				c, served := startWrap(t, srv, w, partial)
				stopped := shutdown(t, srv)
				if err := <-stopped; err != nil {
					t.Errorf("Shutdown: %v; want it done once the connection was %v old", err, 100*time.Millisecond)
				}
				if err := <-served; err != server.ErrServerClosed {
					t.Errorf("Serve: %v, want ErrServerClosed", err)
				}
				// End of file, or a reset if the stop came before the
				// wrapper had read what the client sent (a busy machine).
				c.SetReadDeadline(time.Now().Add(bound))
				if rest, err := io.ReadAll(c); len(rest) != 0 || errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("read %q, %v; want the connection closed", rest, err)
				}
			})
		}
	}
}

// With Linger off there is no wait for a wrap under way at a graceful
// stop: it is cut at once, however long the newcomers' wait and the
// wrapper's own time-out. (Its client sends nothing: what it sent and the
// wrapper had not read yet would make the close a reset.)
func TestShutdownWithLingerOffCutsAWrapAtOnce(t *testing.T) {
	for _, w := range wraps(t) {
		w.opts.HandshakeTimeout = time.Hour
		t.Run(w.name, func(t *testing.T) {
			srv := &server.Server{Logger: discard(), Linger: -1}
			srv.SetNewcomerWait(time.Hour)
			c, served := startWrap(t, srv, w, false)
			if err := <-shutdown(t, srv); err != nil {
				t.Errorf("Shutdown: %v; want it done at once, Linger off", err)
			}
			if err := <-served; err != server.ErrServerClosed {
				t.Errorf("Serve: %v, want ErrServerClosed", err)
			}
			if _, err := io.ReadAll(c); err != nil {
				t.Errorf("read: %v; want end of file", err)
			}
		})
	}
}

// Close, or Shutdown's context ending, while a graceful stop waits for a
// wrap under way ends it at once: the wait (here an hour) is the graceful
// stop's only.
func TestForcedStopEndsTheWaitForAWrap(t *testing.T) {
	for _, w := range wraps(t) {
		w.opts.HandshakeTimeout = time.Hour
		for _, how := range []string{"Close", "Shutdown's context"} {
			t.Run(w.name+"/"+how, func(t *testing.T) {
				srv := &server.Server{Logger: discard(), Linger: time.Hour}
				srv.SetNewcomerWait(time.Hour)
				c, served := startWrap(t, srv, w, true)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				stopped := shutdownCtx(ctx, srv)
				// Serve returns once the stop has put every connection's
				// read deadline in the past (closeAll, under the lock
				// drainQueue takes): the wrap waits on.
				if err := <-served; err != server.ErrServerClosed {
					t.Errorf("Serve: %v, want ErrServerClosed", err)
				}
				want := error(nil) // as if the connections had closed
				if how == "Close" {
					go srv.Close()
				} else {
					cancel()
					want = context.Canceled
				}
				if err := shutdownResult(t, stopped); !errors.Is(err, want) {
					t.Errorf("Shutdown: %v, want %v", err, want)
				}
				c.SetReadDeadline(time.Now().Add(bound))
				if _, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) {
					t.Error("the client's connection was not closed")
				}
			})
		}
	}
}

// A wrapper's read deadline at a graceful stop: one shorter than the
// stop's wait for the wrap is the wrapper's, and ends its read then, set
// before the stop or after; one longer (SetReadDeadline or SetDeadline)
// is held to the wait, so that the stop is not held up for it.
func TestShutdownKeepsAWrappersDeadline(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after bool                                // set once the stop has begun
		set   func(c net.Conn, t time.Time) error // how the wrapper sets it
		wait  time.Duration                       // the stop's for the wrap
		in    time.Duration                       // the wrapper's deadline, from now
	}{
		{"shorter, before the stop", false, net.Conn.SetReadDeadline, time.Hour, 100 * time.Millisecond},
		{"shorter, after the stop", true, net.Conn.SetReadDeadline, time.Hour, 100 * time.Millisecond},
		{"shorter SetDeadline, after the stop", true, net.Conn.SetDeadline, time.Hour, 100 * time.Millisecond},
		{"longer, before the stop", false, net.Conn.SetReadDeadline, 100 * time.Millisecond, time.Hour},
		{"longer, after the stop", true, net.Conn.SetReadDeadline, 100 * time.Millisecond, time.Hour},
		{"longer SetDeadline, before the stop", false, net.Conn.SetDeadline, 100 * time.Millisecond, time.Hour},
		{"longer SetDeadline, after the stop", true, net.Conn.SetDeadline, 100 * time.Millisecond, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wrapping, read := make(chan struct{}), make(chan error, 1)
			srv := &server.Server{Logger: discard(), Linger: time.Hour}
			srv.SetNewcomerWait(tc.wait)
			srv.WrapConn = func(c net.Conn) (net.Conn, error) {
				if !tc.after {
					tc.set(c, time.Now().Add(tc.in))
				}
				close(wrapping)
				if tc.after {
					<-srv.Stopping()
					tc.set(c, time.Now().Add(tc.in))
				}
				_, err := c.Read(make([]byte, 1)) // nothing comes
				read <- err
				return nil, err
			}
			addr := shouttest.Start(t, srv)
			c := shouttest.Dial(t, "tcp", addr, bound)
			select {
			case <-wrapping:
			case <-time.After(bound):
				t.Fatalf("no wrap within %v", bound)
			}
			stopped := shutdown(t, srv)
			if _, err := io.ReadAll(c); err != nil {
				t.Errorf("read: %v; want end of file once the wrapper's deadline or the stop's wait (the shorter) had passed", err)
			}
			// A wrapper's deadline that passed before the stop (a busy
			// machine) refused the connection, which lingers until this.
			c.Close()
			shutdownReturned(t, stopped)
			if err := <-read; !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("the wrapper's read: %v, want %v", err, os.ErrDeadlineExceeded)
			}
		})
	}
}

// Server.WrapConn's wrap under way at a graceful stop (here a TLS
// handshake on a plain listener) may finish, as a ConnWrapper listener's
// may (see TestShutdownLetsAWrapUnderWayFinish), and the client's first
// message after it is answered.
func TestShutdownLetsServerWrapConnFinish(t *testing.T) {
	var tw wrap
	for _, w := range wraps(t) {
		if w.tls {
			tw = w
		}
	}
	wrapping := make(chan struct{}, 1)
	srv := &server.Server{Logger: discard(), Linger: bound}
	srv.SetNewcomerWait(bound)
	srv.WrapConn = func(c net.Conn) (net.Conn, error) {
		wrapping <- struct{}{}
		tc := tls.Server(c, tw.opts.TLS)
		if err := tc.Handshake(); err != nil {
			return nil, err
		}
		return tc, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	c := shouttest.Dial(t, "tcp", ln.Addr().String(), bound)
	select {
	case <-wrapping:
	case <-time.After(bound):
		t.Fatalf("no wrap within %v", bound)
	}
	stopped := shutdown(t, srv)
	if err := <-served; err != server.ErrServerClosed { // the stop has begun
		t.Fatalf("Serve: %v, want ErrServerClosed", err)
	}
	cc := tw.begin(t, c)
	if _, err := io.WriteString(cc, "late\n"); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(cc); err != nil || string(got) != "LATE\n" {
		t.Errorf("got %q, %v; want %q, then end of file", got, err, "LATE\n")
	}
	cc.Close()
	shutdownReturned(t, stopped)
}

// unwrapsTo is a ConnWrapper whose Unwrap returns to: not net's own
// listener, whose queue a graceful stop must not try to drain.
type unwrapsTo struct {
	net.Listener
	to net.Listener
}

func (l unwrapsTo) WrapConn(c net.Conn) (net.Conn, error) { return c, nil }
func (l unwrapsTo) Unwrap() net.Listener                  { return l.to }

// otherListener is a listener that is not net's own.
type otherListener struct{ net.Listener }

// A ConnWrapper whose Unwrap returns no listener of net's own (nil, or a
// wrapper of one) is not drained at a graceful stop, as any listener
// that is not net's own is not: the stop closes it, and ends.
func TestShutdownLeavesUnwrapOfNoNetListener(t *testing.T) {
	for _, tc := range []struct {
		name string
		to   func(net.Listener) net.Listener
	}{
		{"nil", func(net.Listener) net.Listener { return nil }},
		{"a wrapper", func(ln net.Listener) net.Listener { return otherListener{ln} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &server.Server{Logger: discard(), Linger: bound}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := serveListenerHeld(t, srv, unwrapsTo{ln, tc.to(ln)})
			shutdownReturned(t, shutdown(t, srv))
			if err := <-served; err != server.ErrServerClosed {
				t.Errorf("Serve: %v, want ErrServerClosed", err)
			}
		})
	}
}

// More clients queued on a TLS or PROXY listener at a graceful stop than
// MaxConnsPerIP has places for (each PROXY header names the same client):
// one is answered, the others are turned away as at any time, with an
// end of file (a failed handshake, or no reply) and not a reset, and the
// stop ends.
func TestShutdownQueuedWrappedOverPerIPLimit(t *testing.T) {
	for _, w := range wraps(t) {
		t.Run(w.name, func(t *testing.T) {
			srv := &server.Server{Logger: discard(), Linger: bound, MaxConnsPerIP: 1}
			srv.SetNewcomerWait(bound)
			ln := w.listen(t)
			served := serveListenerHeld(t, srv, ln)
			const n = 3
			type result struct {
				i   int
				got string
				err error
			}
			results := make(chan result, n)
			// A client answered keeps its place until every client has its
			// answer: were it to close first, the stop would admit the next
			// queued one in the place it freed (the limit bounds connections
			// at once, not in all).
			release := make(chan struct{})
			free := sync.OnceFunc(func() { close(release) })
			defer free()
			for i := range n {
				c := shouttest.Dial(t, "tcp", ln.Addr().String(), bound)
				go func() {
					defer c.Close()       // the server's linger ends on this end of file
					cc, err := w.start(c) // a TLS client turned away fails its handshake
					if err == nil {
						_, err = fmt.Fprintf(cc, "queued %d\n", i)
					}
					if err != nil {
						results <- result{i, "", err}
						return
					}
					got, err := io.ReadAll(cc)
					results <- result{i, string(got), err}
					if len(got) > 0 {
						<-release
					}
				}()
			}
			u := ln.(interface{ Unwrap() net.Listener })
			backlogHolds(t, u.Unwrap().(*net.TCPListener), n)
			stopped := shutdown(t, srv)
			replies := 0
			for range n {
				var r result
				select {
				case r = <-results:
				case <-time.After(2 * bound):
					t.Fatalf("a client had no reply nor error within %v", 2*bound)
				}
				want := fmt.Sprintf("QUEUED %d\n", r.i)
				switch {
				case r.got == want && r.err == nil:
					replies++
				case r.got == "" && (r.err == nil || errors.Is(r.err, io.EOF)):
					// turned away
				default:
					t.Errorf("client %d: got %q, %v; want %q, or end of file", r.i, r.got, r.err, want)
				}
			}
			if replies != 1 {
				t.Errorf("%d clients answered, want 1 (MaxConnsPerIP)", replies)
			}
			free()
			shutdownReturned(t, stopped)
			if err := <-served; err != server.ErrServerClosed {
				t.Errorf("Serve: %v, want ErrServerClosed", err)
			}
		})
	}
}
