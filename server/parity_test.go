package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/text/transform"

	"shout/server"
)

// servePlain serves srv on a fresh loopback listener; the returned func
// waits for Serve to return and gives its error.
func servePlain(t *testing.T, srv *server.Server) (string, func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := serveOn(t, srv, ln)
	return ln.Addr().String(), func() error { srv.Close(); return <-done }
}

// serveOn serves srv on ln until the test ends, when it closes srv; Serve's
// error comes on the channel.
func serveOn(t *testing.T, srv *server.Server, ln net.Listener) <-chan error {
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return done
}

func exchange(t *testing.T, c net.Conn, send, want string) {
	t.Helper()
	io.WriteString(c, send)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("sent %q: got %q, %v; want %q", send, got, err, want)
	}
}

// readSizes is an Observer that keeps the largest read, and holds the
// first connection's open until release is closed.
type readSizes struct {
	recorder
	mu      sync.Mutex
	largest int
	release chan struct{}
}

func (r *readSizes) ConnOpen(*server.ConnInfo) { <-r.release }
func (r *readSizes) ConnRead(_ *server.ConnInfo, p []byte) {
	r.mu.Lock()
	r.largest = max(r.largest, len(p))
	r.mu.Unlock()
}

// ReadSize is the largest read from a stream, whichever driver reads.
func TestReadSizeBoundsReads(t *testing.T) {
	const size = 2048
	obs := &readSizes{release: make(chan struct{})}
	srv := &server.Server{Observer: obs, ReadSize: size}
	addr, _ := servePlain(t, srv)
	c := dial(t, addr)
	msg := strings.Repeat("x", 4*size)
	// Sent in full before the server reads: its first reads are full.
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	close(obs.release)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != strings.ToUpper(msg) {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.largest > size {
		t.Errorf("a read of %d bytes with ReadSize %d", obs.largest, size)
	}
}

// roomy is a Transformer that makes no progress unless dst has need
// bytes: it asks for more room, as a transformer may.
type roomy struct {
	transform.NopResetter
	need int
}

func (r roomy) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	if len(src) == 0 {
		return 0, 0, nil
	}
	if len(dst) < r.need {
		return 0, 0, transform.ErrShortDst
	}
	n := copy(dst, strings.ToUpper(string(src)))
	return n, n, nil
}

// A transformer that makes no progress with room for four reads (of
// ReadSize) fails the connection with the same error on either driver,
// however large the driver's own reply buffer is; one that needs that
// room, and no more, is given it and answered.
func TestNoProgressBound(t *testing.T) {
	const size = 512
	t.Run("room for four reads", func(t *testing.T) {
		srv := &server.Server{ReadSize: size, Transformer: roomy{need: 4 * size}, Logger: discard()}
		addr, _ := servePlain(t, srv)
		exchange(t, dial(t, addr), "a", "A")
	})
	t.Run("more", func(t *testing.T) {
		var obs recorder
		srv := &server.Server{Observer: &obs, ReadSize: size, Transformer: roomy{need: 8 * size}}
		addr, _ := servePlain(t, srv)
		c := dial(t, addr)
		io.WriteString(c, "a")
		if got, _ := io.ReadAll(c); len(got) != 0 {
			t.Errorf("answered %q", got)
		}
		ci := obs.waitClose(t)
		if ci.Reason != server.ReasonError || ci.Err == nil || !strings.Contains(ci.Err.Error(), "no progress") {
			t.Errorf("closed for %v, %v; want error, no progress", ci.Reason, ci.Err)
		}
	})
}

// holdRead is an Observer whose ConnRead of a message starting "hold"
// signals held and waits for release: a slow Observer.
type holdRead struct {
	recorder
	held    chan struct{}
	release chan struct{}
}

func (h *holdRead) ConnRead(_ *server.ConnInfo, p []byte) {
	if strings.HasPrefix(string(p), "hold") {
		h.held <- struct{}{}
		<-h.release
	}
}

// A slow Observer delays the connections served beside the one it
// watches, but does not age them: one read while the Observer held the
// server still waits IdleTimeout before it is closed as idle.
func TestSlowObserverAgesNoRead(t *testing.T) {
	const idle = 400 * time.Millisecond
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one loop, held by the Observer
	obs := &holdRead{held: make(chan struct{}), release: make(chan struct{})}
	srv := &server.Server{Observer: obs, IdleTimeout: idle, Linger: -1}
	addr, _ := servePlain(t, srv)
	x := dial(t, addr)
	exchange(t, x, "x", "X") // the loops run, with GOMAXPROCS(1)
	runtime.GOMAXPROCS(2)
	y := dial(t, addr)
	exchange(t, y, "y", "Y")

	io.WriteString(x, "hold 1")
	<-obs.held
	// While the server is held, x and y send: both are ready when it
	// next waits, x first.
	io.WriteString(x, "hold 2")
	io.WriteString(y, "z")
	type result struct {
		answered, closed time.Time
		err              error
	}
	yr := make(chan result, 1)
	go func() {
		got := make([]byte, 1)
		if _, err := io.ReadFull(y, got); err != nil || string(got) != "Z" {
			yr <- result{err: fmt.Errorf("got %q, %v", got, err)}
			return
		}
		answered := time.Now()
		if n, err := y.Read(got); n != 0 || err != io.EOF {
			yr <- result{err: fmt.Errorf("read %d, %v; want end of file at the idle timeout", n, err)}
			return
		}
		yr <- result{answered: answered, closed: time.Now()}
	}()
	obs.release <- struct{}{}
	<-obs.held
	time.Sleep(2 * idle) // the slow Observer: the stimulus, not a synchronisation
	obs.release <- struct{}{}
	r := <-yr
	if r.err != nil {
		t.Fatalf("y: %v", r.err)
	}
	if d := r.closed.Sub(r.answered); d < idle/2 {
		t.Errorf("y closed %v after its reply; want about IdleTimeout (%v)", d, idle)
	}
}

// badEnd holds a trailing '#' until the end of input, then answers it
// with '!' and an error: a transformer that fails at the end, having
// written.
type badEnd struct{ transform.NopResetter }

var errBadEnd = errors.New("bad end")

func (badEnd) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	n := len(src)
	held := n > 0 && src[n-1] == '#'
	if held {
		n--
	}
	if len(dst) < n+1 {
		return 0, 0, transform.ErrShortDst
	}
	copy(dst, strings.ToUpper(string(src[:n])))
	switch {
	case held && !atEOF:
		return n, n, transform.ErrShortSrc
	case held:
		dst[n] = '!'
		return n + 1, n + 1, errBadEnd
	}
	return n, n, nil
}

// What a transformer writes at the end of input is answered even if it
// fails there, as any reply is, and the failure closes the connection.
func TestFlushAnswersWhatFailingTransformerWrote(t *testing.T) {
	var obs recorder
	srv := &server.Server{Observer: &obs, Transformer: badEnd{}}
	addr, _ := servePlain(t, srv)
	c := dial(t, addr)
	io.WriteString(c, "ab#")
	c.CloseWrite()
	if got, err := io.ReadAll(c); err != nil || string(got) != "AB!" {
		t.Errorf("got %q, %v; want %q", got, err, "AB!")
	}
	ci := obs.waitClose(t)
	if ci.Reason != server.ReasonError || !errors.Is(ci.Err, errBadEnd) || ci.BytesOut != 3 {
		t.Errorf("closed for %v, %v, %d bytes out; want error, %v, 3", ci.Reason, ci.Err, ci.BytesOut, errBadEnd)
	}
}

// holdOpen is an Observer whose ConnOpen, once armed, signals entered
// and waits for the server to begin stopping: the driver that called it
// is held there while Shutdown runs.
type holdOpen struct {
	recorder
	armed    atomic.Bool
	stopping <-chan struct{}
	entered  chan struct{}
}

func (h *holdOpen) ConnOpen(*server.ConnInfo) {
	if h.armed.CompareAndSwap(true, false) {
		close(h.entered)
		<-h.stopping
	}
}

// Shutdown that begins while a connection is being admitted (announced,
// counted under MaxConns) finishes: the driver that admits it, seeing the
// stop, closes it and gives back its place while Shutdown is closing the
// listener it was accepted from.
func TestShutdownDuringAdmit(t *testing.T) {
	obs := &holdOpen{entered: make(chan struct{})}
	srv := &server.Server{Observer: obs, MaxConns: 10, Linger: -1}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1) // (no Close at the end: on a deadlock it would hang the test)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()
	exchange(t, dial(t, addr), "a", "A") // serving, so Stopping is set
	obs.stopping = srv.Stopping()
	obs.armed.Store(true)
	dial(t, addr)
	select {
	case <-obs.entered:
	case <-time.After(bound):
		t.Fatal("the second connection was not announced")
	}
	// Should it not return, the server is stuck: no Close can end it, and
	// none is tried.
	shutdownReturned(t, shutdownCtx(context.Background(), srv))
	if err := <-served; !errors.Is(err, server.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}

// group is a Transformer that answers a group, "[" to "]", upper case and
// whole: until its "]" comes the group is an incomplete character, held.
// At the end of input an unended group is answered as it is.
type group struct{ transform.NopResetter }

func (group) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		n, end := 1, 1
		if src[nSrc] == '[' {
			end = strings.IndexByte(string(src[nSrc:]), ']')
			if end < 0 && !atEOF {
				return nDst, nSrc, transform.ErrShortSrc
			}
			n = len(src) - nSrc
			if end >= 0 {
				n = end + 1
			}
		}
		out := src[nSrc : nSrc+n]
		if end >= 0 {
			out = []byte(strings.ToUpper(string(out)))
		}
		if len(dst)-nDst < len(out) {
			return nDst, nSrc, transform.ErrShortDst
		}
		nDst += copy(dst[nDst:], out)
		nSrc += n
	}
	return nDst, nSrc, nil
}

// readSignal is a recorder that says when the server has read something.
type readSignal struct {
	recorder
	read chan struct{}
}

func (r *readSignal) ConnRead(*server.ConnInfo, []byte) {
	select {
	case r.read <- struct{}{}:
	default: // told already
	}
}

// An incomplete character of 256 bytes, the most the server holds from
// one read to the next, is held, on either driver, and answered with the
// rest of it when that comes.
func TestHeldCharacterOfTheMostBytes(t *testing.T) {
	obs := &readSignal{read: make(chan struct{}, 1)}
	srv := &server.Server{Transformer: group{}, Observer: obs, Logger: discard()}
	addr, _ := servePlain(t, srv)
	c := dial(t, addr)
	first := "[" + strings.Repeat("a", 255) // 256 bytes, none answered yet
	io.WriteString(c, first)
	<-obs.read
	exchange(t, c, "]", strings.ToUpper(first)+"]")
}
