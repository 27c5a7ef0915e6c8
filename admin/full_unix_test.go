//go:build unix

package admin_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"shout/admin"
)

// Connections whose requests are being answered are not closed to make
// room: a probe that finds the listener full of them waits for one to
// end, and every answer is whole. With no grace, a connection counts as
// waiting on its client the moment it does, so that one counted so while
// being answered is closed whatever the machine's pace: on a busy one,
// with the grace, one was (a reset after 3,940 bytes, its write not yet
// in the kernel).
//
// Every answer's first write is held before the kernel has a byte of it
// (a writer whose goroutine has not run) until the listener, full, with
// the probe accepted, has looked twice at the connections and closed
// none, or has closed one: so the look comes while every write is under
// way, as it came only now and then when the writes went straight
// through. (Unix only: elsewhere the socket is not asked, and a write
// under way waits on its client: pending_other.go.)
func TestFullListenerKeepsConnectionsBeingAnswered(t *testing.T) {
	defer admin.SetEvictGrace(0)()
	m := admin.NewMetrics(admin.Config{})
	h := admin.NewHandler(m, false)
	entered := make(chan struct{}, admin.MaxConns)
	release := make(chan struct{})
	h.Handle("GET /busy", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		<-release
		io.WriteString(w, strings.Repeat("busy\n", 2000)) // more than one write's worth
	}))
	hs := h.HTTPServer(slog.New(slog.DiscardHandler))
	held := &watched{writing: make(chan struct{}, admin.MaxConns), release: make(chan struct{}),
		lookedAgain: make(chan struct{}, 1), closed: make(chan struct{}, admin.MaxConns+1)}
	addr, _ := limited(t, hs, func(ln net.Listener) net.Listener { held.Listener = ln; return held }, admin.MaxConns)
	client := &http.Client{Timeout: bound, Transport: &http.Transport{DisableKeepAlives: true}}
	var wg sync.WaitGroup
	errs := make(chan error, admin.MaxConns)
	for range admin.MaxConns {
		wg.Go(func() {
			resp, err := client.Get("http://" + addr + "/busy")
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil || len(body) != 2000*len("busy\n") {
				errs <- fmt.Errorf("%d bytes, %v", len(body), err)
			}
		})
	}
	for range admin.MaxConns {
		await(t, entered, "every request being answered")
	}
	close(release)
	for range admin.MaxConns {
		await(t, held.writing, "every answer's write under way")
	}
	probed := make(chan error, 1)
	go func() {
		code, body, err := probe(addr, "/healthz")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("%d %q", code, body)
		}
		probed <- err
	}()
	select {
	case <-held.lookedAgain:
	case <-held.closed:
	case <-time.After(bound):
		t.Fatalf("the full listener neither looked at its connections twice nor closed one within %v of the probe", bound)
	}
	close(held.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a request being answered when the listener was full: %v; want its whole answer", err)
	}
	if err := <-probed; err != nil {
		t.Errorf("/healthz: %v; want 200", err)
	}
}

// watched is a listener whose connections hold their first write, before
// the kernel has it, telling writing, until release; and tell
// lookedAgain when the limit listener asks one's socket a second time (a
// look at the connections that closed none, then another) and closed
// when one is closed.
type watched struct {
	net.Listener
	writing, release    chan struct{}
	lookedAgain, closed chan struct{}
}

func (l *watched) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &watchedConn{TCPConn: c.(*net.TCPConn), l: l}, nil
}

type watchedConn struct {
	*net.TCPConn
	l     *watched
	wrote atomic.Bool
	asked atomic.Int32
}

func (c *watchedConn) Write(p []byte) (int, error) {
	if !c.wrote.Swap(true) {
		c.l.writing <- struct{}{}
		<-c.l.release
	}
	return c.TCPConn.Write(p)
}

// SyscallConn is the socket's, which the limit listener asks whether the
// client owes anything.
func (c *watchedConn) SyscallConn() (syscall.RawConn, error) {
	if c.asked.Add(1) == 2 {
		select {
		case c.l.lookedAgain <- struct{}{}:
		default:
		}
	}
	return c.TCPConn.SyscallConn()
}

func (c *watchedConn) Close() error {
	select {
	case c.l.closed <- struct{}{}:
	default:
	}
	return c.TCPConn.Close()
}
