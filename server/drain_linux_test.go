package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"shout/internal/shouttest"
	"shout/server"
)

// queuedServer serves a TCP listener on srv with its accepts held until
// the stop, and queues n clients on it, each having sent "queued i\n":
// Linux has each in the listener's accept queue when it returns.
func queuedServer(t *testing.T, srv *server.Server, n int) (clients []net.Conn, served <-chan error) {
	t.Helper()
	return queuedOn(t, srv, "tcp", n)
}

// queuedOn is queuedServer on a listener of network: "tcp" or "unix".
func queuedOn(t *testing.T, srv *server.Server, network string, n int) (clients []net.Conn, served <-chan error) {
	t.Helper()
	ln, ch := serveHeld(t, srv, network)
	return queueClients(t, ln, n), ch
}

// backlogHolds waits until n connections wait in ln's accept queue: a
// client's connect returns once the server's handshake reply came, which
// may be before the server has taken the client's last ACK (and then the
// connection is not in the queue yet, for a stop to find).
func backlogHolds(t *testing.T, ln *net.TCPListener, n int) {
	t.Helper()
	rc, err := ln.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(bound); ; time.Sleep(time.Millisecond) {
		queued := -1
		rc.Control(func(fd uintptr) {
			// A listener's tcpi_unacked is its accept queue's length.
			if ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				queued = int(ti.Unacked)
			}
		})
		if queued == n {
			return
		}
		if queued < 0 {
			t.Fatal("cannot read the listener's accept queue")
		}
		if time.Now().After(end) {
			t.Fatalf("%d connections in the accept queue, want %d", queued, n)
		}
	}
}

// gateOpens is an Observer whose second ConnOpen signals entered and
// waits for release, holding the drain (or the loop) that announces it;
// it counts the opens, and those announced once the stop was forced.
type gateOpens struct {
	recorder
	srv              *server.Server
	opens, late      atomic.Int32
	entered, release chan struct{}
}

func (g *gateOpens) ConnOpen(*server.ConnInfo) {
	if g.srv.Forced() {
		g.late.Add(1)
	}
	if g.opens.Add(1) == 2 {
		close(g.entered)
		<-g.release
	}
}

// Close, or Shutdown's context ending, while the clients queued at a
// graceful stop are being accepted and admitted: the stop ends at once
// (with Linger an hour, a queued client admitted and stopped past it
// would hold it up until its client's end of file, which comes only once
// the stop has returned), no connection is announced once it is forced,
// and every client's read ends, with its reply or without, and no
// descriptor or goroutine is left behind. With each driver (one loop,
// which the Observer holds), over TCP and a Unix socket.
func TestForcedWhileDrainingQueue(t *testing.T) {
	for _, tc := range []struct{ network, how string }{
		{"tcp", "Close"}, {"tcp", "Shutdown's context"}, {"unix", "Close"}, {"unix", "Shutdown's context"},
	} {
		how := tc.how
		t.Run(tc.network+"/"+how, func(t *testing.T) {
			shouttest.CheckFDs(t)
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one loop: it announces every queued client in turn
			gate := &gateOpens{entered: make(chan struct{}), release: make(chan struct{})}
			release := sync.OnceFunc(func() { close(gate.release) })
			defer release()
			srv := &server.Server{Linger: time.Hour, Logger: discard(), Observer: gate}
			gate.srv = srv
			const n = 6
			clients, served := queuedOn(t, srv, tc.network, n)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stopped := shutdownCtx(ctx, srv)
			select {
			case <-gate.entered:
			case <-time.After(bound):
				t.Fatal("the second queued client was not announced")
			}
			closed := make(chan error, 1)
			if how == "Close" {
				go func() { closed <- srv.Close() }()
			} else {
				cancel()
				closed <- nil
			}
			for end := time.Now().Add(bound); !srv.Forced(); time.Sleep(time.Millisecond) {
				if time.Now().After(end) {
					t.Fatal("the stop was not forced")
				}
			}
			release()
			shutdownErr := error(nil) // as if the connections had closed
			if how != "Close" {
				shutdownErr = context.Canceled
			}
			for _, r := range []struct {
				name string
				ch   <-chan error
				want error
			}{{"Close", closed, nil}, {"Shutdown", stopped, shutdownErr}} {
				name, want := r.name, r.want
				select {
				case err := <-r.ch:
					if !errors.Is(err, want) {
						t.Errorf("%s: %v, want %v", name, err, want)
					}
				case <-time.After(bound):
					t.Fatalf("%s did not return: a connection of the forced stop is served on", name)
				}
			}
			if err := <-served; err != server.ErrServerClosed {
				t.Errorf("Serve: %v, want ErrServerClosed", err)
			}
			if late := gate.late.Load(); late != 0 {
				t.Errorf("%d connections announced once the stop was forced (of %d announced)", late, gate.opens.Load())
			}
			for i, c := range clients {
				c.SetReadDeadline(time.Now().Add(bound))
				got, err := io.ReadAll(c)
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("client %d: not closed (read %q)", i, got)
				} else if want := fmt.Sprintf("QUEUED %d\n", i); len(got) > 0 && string(got) != want {
					t.Errorf("client %d: got %q, want %q or nothing", i, got, want)
				}
				c.Close()
			}
		})
	}
}

// More clients queued at a graceful stop than MaxConns (or MaxConnsPerIP)
// has places for: one is answered, the others are turned away as at any
// time, with an end of file and not a reset, and the stop ends.
func TestShutdownQueuedOverLimit(t *testing.T) {
	for _, tc := range []struct {
		name string
		srv  *server.Server
	}{
		{"MaxConns", &server.Server{MaxConns: 1}},
		{"MaxConnsPerIP", &server.Server{MaxConnsPerIP: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shouttest.CheckFDs(t)
			srv := tc.srv
			srv.Logger = discard()
			const n = 5
			clients, served := queuedServer(t, srv, n)
			stopped := shutdown(t, srv)
			replies := 0
			for i, c := range clients {
				c.SetReadDeadline(time.Now().Add(bound))
				got, err := io.ReadAll(c)
				want := fmt.Sprintf("QUEUED %d\n", i)
				switch {
				case err != nil:
					t.Errorf("client %d: got %q, %v; want its reply or nothing, then end of file", i, got, err)
				case string(got) == want:
					replies++
				case len(got) > 0:
					t.Errorf("client %d: got %q, want %q or nothing", i, got, want)
				}
				c.Close() // the server's linger ends on this end of file
			}
			if replies == 0 {
				t.Error("no queued client was answered")
			}
			shutdownReturned(t, stopped)
			if err := <-served; err != server.ErrServerClosed {
				t.Errorf("Serve: %v, want ErrServerClosed", err)
			}
		})
	}
}

// A graceful stop out of descriptors accepts the queued clients it can,
// and the others as the connections it serves close and free theirs:
// every one is answered, none reset by the listener's close, and the log
// says nothing of clients left. (The stop gave up at its first failed
// accept: under ulimit -n 200, 210 of 400 queued clients read a reset,
// and nothing in the log said so.)
func TestShutdownQueuedOutOfDescriptors(t *testing.T) {
	shouttest.CheckFDs(t)
	var log shouttest.Log
	srv := &server.Server{Logger: log.Logger()}
	const n = 4
	clients, served := queuedServer(t, srv, n)
	restore := outOfDescriptorsBut(t, 1) // for the first client's
	defer restore()
	stopped := shutdown(t, srv)
	for i, c := range clients {
		c.SetReadDeadline(time.Now().Add(bound))
		got, err := io.ReadAll(c)
		if want := fmt.Sprintf("QUEUED %d\n", i); err != nil || string(got) != want {
			t.Errorf("client %d: got %q, %v; want %q, then end of file", i, got, err, want)
		}
		c.Close() // the server's linger ends, and its descriptor is free
	}
	shutdownReturned(t, stopped)
	restore()
	if err := <-served; err != server.ErrServerClosed {
		t.Errorf("Serve: %v, want ErrServerClosed", err)
	}
	if strings.Contains(log.String(), leftMsg) {
		t.Errorf("clients said to be left queued:\n%s", log.String())
	}
}

// leftMsg is the log's line for clients a graceful stop left queued.
const leftMsg = `msg="stop left clients queued, unanswered: the listener's close resets them"`

// A graceful stop that leaves clients queued, out of descriptors with no
// connection left whose close would free one, or cut short by Shutdown's
// context while it waits for one, logs one line: the listener, how many
// it left (its close resets each) and why. The stop ends, not waiting
// for descriptors that nothing it holds will free.
func TestShutdownQueuedLeftLogged(t *testing.T) {
	for _, tc := range []struct {
		name string
		free int    // descriptors left free: the first clients' accepts
		why  string // in the line's why
	}{
		{"none to close", 0, `why="the accept failed with no connection left to close: accept tcp `},
		{"forced", 1, `why="the stop was cut short`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shouttest.CheckFDs(t)
			// One loop: another's end would free its descriptors, which
			// the stop would take a client with.
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			var log shouttest.Log
			// The first client, answered, keeps its end open: its
			// connection lingers, and frees nothing, until forced.
			srv := &server.Server{Logger: log.Logger(), Linger: time.Hour}
			const n = 3
			clients, served := queuedServer(t, srv, n)
			restore := outOfDescriptorsBut(t, tc.free)
			defer restore()
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			stopped := shutdownCtx(ctx, srv)
			answered := 0
			for i, c := range clients[:tc.free] {
				c.SetReadDeadline(time.Now().Add(bound))
				got, err := io.ReadAll(c)
				if want := fmt.Sprintf("QUEUED %d\n", i); err != nil || string(got) != want {
					t.Fatalf("client %d: got %q, %v; want %q, then end of file", i, got, err, want)
				}
				answered++
			}
			if tc.free > 0 {
				cancel()
			}
			// A descriptor a finalizer frees meanwhile may let the
			// stop take one more, which it answers.
			for i, c := range clients[tc.free:] {
				i += tc.free
				c.SetReadDeadline(time.Now().Add(bound))
				got, err := io.ReadAll(c)
				switch want := fmt.Sprintf("QUEUED %d\n", i); {
				case errors.Is(err, unix.ECONNRESET) && len(got) == 0:
				case string(got) == want && (err == nil || errors.Is(err, unix.ECONNRESET)):
					answered++
				default:
					t.Errorf("client %d: got %q, %v; want a reset, or %q", i, got, err, want)
				}
				c.Close() // one answered lingers until then, and the stop waits for it
			}
			for _, c := range clients {
				c.Close()
			}
			if err := shutdownResult(t, stopped); tc.free == 0 && err != nil || tc.free > 0 && err != context.Canceled {
				t.Errorf("Shutdown: %v", err)
			}
			restore()
			if err := <-served; err != server.ErrServerClosed {
				t.Errorf("Serve: %v, want ErrServerClosed", err)
			}
			lines := strings.Count(log.String(), leftMsg)
			want := fmt.Sprintf("queued=%d %s", n-answered, tc.why)
			if lines != 1 || !strings.Contains(log.String(), want) {
				t.Errorf("log:\n%s\nwant one line %s, with %s", log.String(), leftMsg, want)
			}
		})
	}
}

// A graceful stop out of descriptors with no connection open, on a
// server with two listeners: closing the one with nothing queued frees a
// descriptor, and the stop takes the other's queued clients with it, the
// next as each it answered closes; every one is answered, and the log
// says nothing of clients left. (The loops gave up as the stop found no
// connection to close, missing a descriptor freed before they looked:
// every client was reset, and the log said none was left to close.)
func TestShutdownQueuedOutOfDescriptorsFreedBefore(t *testing.T) {
	shouttest.CheckFDs(t)
	var log shouttest.Log
	srv, ln, _, served := twoHeldListeners(t, &log)
	const n = 3
	clients := queueClients(t, ln, n)
	restore := outOfDescriptorsBut(t, 0)
	defer restore()
	stopped := shutdown(t, srv)
	answeredQueued(t, clients) // each closed: the server's linger ends, and its descriptor is free
	shutdownReturned(t, stopped)
	restore()
	for range 2 {
		if err := <-served; err != server.ErrServerClosed {
			t.Errorf("Serve: %v, want ErrServerClosed", err)
		}
	}
	if strings.Contains(log.String(), leftMsg) {
		t.Errorf("clients said to be left queued:\n%s", log.String())
	}
}

// A graceful stop out of descriptors with no connection open, on a
// server with two listeners that both have clients queued, and no
// deadline (--shutdown-timeout 0): the drains, each waiting for a
// descriptor while the other runs, do not wait for each other for ever.
// One gives up, and its listener's close may free a descriptor for the
// other's clients; each client is answered or reset, and the stop ends.
func TestShutdownQueuedOutOfDescriptorsTwoQueued(t *testing.T) {
	shouttest.CheckFDs(t)
	var log shouttest.Log
	srv, a, b, served := twoHeldListeners(t, &log)
	const n = 2
	clients := append(queueClients(t, a, n), queueClients(t, b, n)...)
	restore := outOfDescriptorsBut(t, 0)
	defer restore()
	stopped := shutdownCtx(context.Background(), srv) // no deadline (--shutdown-timeout 0)
	for i, c := range clients {
		c.SetReadDeadline(time.Now().Add(bound))
		got, err := io.ReadAll(c)
		want := fmt.Sprintf("QUEUED %d\n", i%n)
		if !(err == nil && string(got) == want || errors.Is(err, unix.ECONNRESET)) {
			t.Errorf("client %d: got %q, %v; want %q, then end of file, or a reset", i, got, err, want)
		}
		c.Close()
	}
	shutdownReturned(t, stopped) // unless its drains wait for each other
	restore()
	for range 2 {
		if err := <-served; err != server.ErrServerClosed {
			t.Errorf("Serve: %v, want ErrServerClosed", err)
		}
	}
}

// twoHeldListeners is a server logging to log that serves two TCP
// listeners, a and b, each Serve held at its first accept (see
// serveUntilHeld); served gets each Serve's error.
func twoHeldListeners(t *testing.T, log *shouttest.Log) (srv *server.Server, a, b net.Listener, served chan error) {
	t.Helper()
	srv = &server.Server{Logger: log.Logger()}
	held := make(chan struct{}, 2)
	srv.HoldAccepts(func(net.Listener) { held <- struct{}{} })
	t.Cleanup(func() { srv.Close() })
	a, b = listenOn(t, "tcp"), listenOn(t, "tcp")
	served = make(chan error, 2)
	serveUntilHeld(t, srv, a, held, served)
	serveUntilHeld(t, srv, b, held, served)
	return srv, a, b, served
}
