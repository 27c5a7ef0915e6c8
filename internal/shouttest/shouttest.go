// Package shouttest holds what many packages' tests share, as
// net/http/httptest and CoreDNS's dnstest do: shout servers on loopback
// (Start, Serve, ServePacket), stand-in servers that answer as a test
// says (StreamServer, PacketServer), Dial with a bound, a log to wait on
// (Log), a check for leaked descriptors (CheckFDs), round-trip
// benchmarks, a port that no server answers on and a listen still finds
// in use (HeldPort), and programs a test needs (Tool, Headless).
package shouttest

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"shout/endpoint"
	"shout/server"
)

// Start serves srv over TCP and UDP on the same free port of 127.0.0.1,
// and closes it when the test ends, failing the test if Serve or
// ServePacket returned anything but server.ErrServerClosed. It returns the
// address both listen on.
func Start(t testing.TB, srv *server.Server) string {
	t.Helper()
	eps, err := endpoint.Parse("127.0.0.1:0", "tcp", "udp")
	if err != nil {
		t.Fatal(err)
	}
	lns, pcs, err := endpoint.Listen(eps)
	if err != nil {
		t.Fatal(err)
	}
	ln, pc := lns[0], pcs[0]
	Serve(t, srv, ln)
	ServePacket(t, srv, pc)
	return ln.Addr().String()
}

// ServePacket serves pc with srv until the test ends, as Serve does ln.
func ServePacket(t testing.TB, srv *server.Server, pc net.PacketConn) {
	t.Helper()
	errs := make(chan error, 1)
	go func() { errs <- srv.ServePacket(pc) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-errs; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("ServePacket returned %v, want ErrServerClosed", err)
		}
	})
}

// Serve serves ln with srv until the test ends, then closes srv, failing
// the test if Serve returned anything but server.ErrServerClosed.
func Serve(t testing.TB, srv *server.Server, ln net.Listener) {
	t.Helper()
	errs := make(chan error, 1)
	go func() { errs <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-errs; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
}

// Dial connects to addr over network within bound, gives the connection
// a deadline bound from now, so that no read or write in the test waits
// longer, and closes it when the test ends.
func Dial(t testing.TB, network, addr string, bound time.Duration) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(network, addr, bound)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(bound))
	return c
}

// Log is a concurrency-safe buffer for a server's log lines.
type Log struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced at each write
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
	return l.buf.Write(p)
}

// WaitFor waits until the log contains s, for at most d, and reports
// whether it does.
func (l *Log) WaitFor(s string, d time.Duration) bool {
	_, ok := l.WaitForAny(d, s)
	return ok
}

// WaitForAny waits until the log contains one of ss, for at most d, and
// returns the first of them it contains, if any.
func (l *Log) WaitForAny(d time.Duration, ss ...string) (string, bool) {
	var found string
	ok := l.waitUntil(d, func(logged string) bool {
		for _, s := range ss {
			if strings.Contains(logged, s) {
				found = s
				return true
			}
		}
		return false
	})
	return found, ok
}

// WaitPast waits until the log holds more than n bytes (something was
// written after a String of n bytes), for at most d, and reports whether
// it does.
func (l *Log) WaitPast(n int, d time.Duration) bool {
	return l.waitUntil(d, func(logged string) bool { return len(logged) > n })
}

// waitUntil waits until done, told what was logged, says so, for at most
// d, looking again at each write, and reports whether it did.
func (l *Log) waitUntil(d time.Duration, done func(logged string) bool) bool {
	timeout := time.After(d)
	for {
		l.mu.Lock()
		if done(l.buf.String()) {
			l.mu.Unlock()
			return true
		}
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-timeout:
			return false
		}
	}
}

// String returns everything logged so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Logger returns a text logger at debug level that writes to l.
func (l *Log) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// CheckFDs fails the test if it ends with more open file descriptors than
// it started with. Register it first, so its check runs after every other
// cleanup has closed what it opened.
func CheckFDs(t testing.TB) {
	t.Helper()
	startPoller()
	before, err := openFDs()
	if err != nil {
		t.Logf("cannot count file descriptors: %v", err)
		return
	}
	t.Cleanup(func() {
		after, err := openFDs()
		if err == nil && after > before {
			t.Errorf("%d file descriptors open at the end, %d at the start", after, before)
		}
	})
}

// startPoller makes the runtime open its network poller's descriptors
// (on Linux an epoll set and an eventfd), which it opens the first time
// the process opens a socket or a pipe and never closes: a test that is
// the first of its process to dial (one run alone with -run) would
// otherwise count those two as its own. A pipe is enough to open them;
// os.ReadDir, which openFDs uses, does not.
var startPoller = sync.OnceFunc(func() {
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
})

func openFDs() (int, error) {
	fds, err := os.ReadDir("/proc/self/fd")
	return len(fds), err
}
