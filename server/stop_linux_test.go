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
			if err := sendOOB(c, "!"); err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, tc.after)
			waitAcked(t, c)
			stopped := make(chan error, 1)
			go func() { stopped <- srv.Shutdown(context.Background()) }()
			<-srv.Stopping()
			close(obs.release)
			// Every reply, then end of file at once (not after Linger).
			if got, err := io.ReadAll(c); err != nil || string(got) != tc.want {
				t.Errorf("read %d bytes %.20q, %v; want %d, then end of file", len(got), got, err, len(tc.want))
			}
			c.Close()
			if err := <-stopped; err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}

// sendOOB sends b out of band (MSG_OOB).
func sendOOB(c *net.TCPConn, b string) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), []byte(b), unix.MSG_OOB, nil)
		return serr != unix.EAGAIN
	}); err != nil {
		return err
	}
	return serr
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
			stopped := make(chan error, 1)
			go func() { stopped <- srv.Shutdown(context.Background()) }()
			<-srv.Stopping()
			close(obs.release)
			if got, err := io.ReadAll(c); err != nil || string(got) != tc.want {
				t.Errorf("read %q, %v; want %q, then end of file", got, err, tc.want)
			}
			c.Close()
			if err := <-stopped; err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}
