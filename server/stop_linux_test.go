package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"shout/internal/shouttest"
	"shout/server"
)

// heldRead is an Observer whose first ConnRead waits until release is
// closed, holding what serves the connection; held is closed once it
// waits.
type heldRead struct {
	recorder
	once          sync.Once
	held, release chan struct{}
}

func (h *heldRead) ConnRead(*server.ConnInfo, []byte) {
	h.once.Do(func() {
		close(h.held)
		<-h.release
	})
}

// An urgent byte (TCP's out-of-band data: telnet sends one for ^C) that
// had arrived when the server stopped does not hide what the client sent
// after it: SIOCINQ counts only up to the urgent mark, and the stop took
// the bytes behind it for ones that came after the stop and closed
// without answering them, by either driver.
func TestShutdownAnswersBehindUrgentMark(t *testing.T) {
	for _, tc := range []struct{ before, after, want string }{
		{"ab", "d", "XABD"},
		{"", "d", "XD"},
		{"ab", "", "XAB"},
		{"ab", strings.Repeat("d", 48<<10), "XAB" + strings.Repeat("D", 48<<10)},
	} {
		t.Run(fmt.Sprintf("%q+urgent+%d", tc.before, len(tc.after)), func(t *testing.T) {
			obs := &heldRead{held: make(chan struct{}), release: make(chan struct{})}
			srv := &server.Server{Observer: obs, Logger: discard(), Linger: time.Hour}
			addr := shouttest.Start(t, srv)
			c := dial(t, addr)
			io.WriteString(c, "x")
			<-obs.held
			// Queued behind the read that is held, when the server stops.
			io.WriteString(c, tc.before)
			if err := server.WriteOOB(c, "!"); err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, tc.after)
			waitAcked(t, c)
			stopped := shutdownCtx(context.Background(), srv)
			<-srv.Stopping()
			close(obs.release)
			// Every reply, then end of file at once (not after Linger).
			if got, err := io.ReadAll(c); err != nil || string(got) != tc.want {
				t.Errorf("read %d bytes %.20q, %v; want %d, then end of file", len(got), got, err, len(tc.want))
			}
			c.Close()
			shutdownReturned(t, stopped)
		})
	}
}

// As TestShutdownAnswersBehindUrgentMark, over a Unix socket, whose
// out-of-band byte (MSG_OOB, Linux 5.15 on) reads also skip.
func TestShutdownAnswersBehindUnixOOB(t *testing.T) {
	for _, tc := range []struct{ before, after, want string }{
		{"ab", "d", "XABD"},
		{"", "d", "XD"},
		{"ab", "", "XAB"},
	} {
		t.Run(fmt.Sprintf("%q+oob+%d", tc.before, len(tc.after)), func(t *testing.T) {
			obs := &heldRead{held: make(chan struct{}), release: make(chan struct{})}
			srv := &server.Server{Observer: obs, Logger: discard(), Linger: time.Hour}
			ln := listenUnix(t)
			serveOn(t, srv, ln)
			nc, err := net.Dial("unix", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c := nc.(*net.UnixConn)
			defer c.Close()
			c.SetDeadline(time.Now().Add(bound))
			io.WriteString(c, "x")
			<-obs.held
			io.WriteString(c, tc.before)
			raw, _ := c.SyscallConn()
			var serr error
			raw.Control(func(fd uintptr) { serr = unix.Sendto(int(fd), []byte("!"), unix.MSG_OOB, nil) })
			if serr != nil {
				t.Skipf("no out-of-band data on Unix sockets here: %v", serr)
			}
			io.WriteString(c, tc.after)
			stopped := shutdownCtx(context.Background(), srv)
			<-srv.Stopping()
			close(obs.release)
			if got, err := io.ReadAll(c); err != nil || string(got) != tc.want {
				t.Errorf("read %q, %v; want %q, then end of file", got, err, tc.want)
			}
			c.Close()
			shutdownReturned(t, stopped)
		})
	}
}

// everyRead is an Observer each of whose ConnReads waits for a word on
// release, having sent on held: the test acts between a read and its
// reply.
type everyRead struct {
	recorder
	held, release chan struct{}
}

func (h *everyRead) ConnRead(*server.ConnInfo, []byte) {
	h.held <- struct{}{}
	<-h.release
}

// A client that sends an urgent byte and more behind it each time the
// stop has read up to its mark does not hold the stop for good: what lies
// behind the mark that had arrived at the stop is owed, but bytes sent
// after the stop are not owed for being behind a later mark. The stop
// counted them again at every mark and answered such a client, by either
// driver, for as long as it went on.
func TestShutdownEndsDespiteUrgentBytesAfterIt(t *testing.T) {
	const rounds = 20
	obs := &everyRead{held: make(chan struct{}), release: make(chan struct{})}
	srv := &server.Server{Observer: obs, Logger: discard()}
	addr := shouttest.Start(t, srv)
	c := dial(t, addr)
	io.WriteString(c, "x")
	<-obs.held
	// Had arrived at the stop: an urgent byte and what follows it.
	if err := server.WriteOOB(c, "!"); err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "d")
	waitAcked(t, c)
	stopped := shutdownCtx(context.Background(), srv)
	<-srv.Stopping()
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(c)
		got <- string(b)
	}()
	obs.release <- struct{}{} // "x" is answered
	answered := 0
	for ended := false; !ended; {
		select {
		case <-obs.held: // a read after the stop's first: "d", or one sent later
			answered++
			if answered < rounds {
				// Behind the next mark, there before the stop looks.
				if err := server.WriteOOB(c, "!"); err != nil {
					t.Fatal(err)
				}
				io.WriteString(c, "e")
				waitAcked(t, c)
			}
			obs.release <- struct{}{}
			if answered == rounds {
				t.Fatalf("the stop answered %d reads of bytes sent behind urgent marks after it; want it ended", answered)
			}
		case s := <-got:
			ended = true
			if s != "XD" {
				t.Errorf("read %q; want \"XD\" (what had arrived at the stop), then end of file", s)
			}
		}
	}
	c.Close()
	shutdownReturned(t, stopped)
}
