//go:build linux

package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A listener the loops no longer accept from is forgotten: a server
// that serves one listener after another keeps none of those closed.
func TestLoopListenersForgotten(t *testing.T) {
	if testEngine == EngineGoroutine {
		t.Skip("the loops' own bookkeeping")
	}
	s := &Server{Logger: slog.New(slog.DiscardHandler)}
	defer s.Close()
	for i := range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- s.Serve(ln) }()
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		got := make([]byte, 1)
		if _, err := c.Write([]byte("a")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "A" {
			t.Fatalf("listener %d: got %q, %v", i, got, err)
		}
		c.Close()
		ln.Close()
		select {
		case err := <-served:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return")
		}
	}
	s.mu.Lock()
	lls := *s.loops.listeners.Load()
	s.mu.Unlock()
	kept := 0
	for _, ll := range lls {
		if ll != nil {
			kept++
		}
	}
	if kept != 0 || len(lls) > 1 {
		t.Errorf("after 3 listeners served and closed, the loops keep %d of them in %d places; want none, in at most 1", kept, len(lls))
	}
}

// A connection accepted from a listener given the options inherits them,
// and is seen to; one from a listener without them is seen not to, and
// so is every later one, which then has them set one by one. Where they
// could not be set on the listener, no connection is looked at.
func TestListenerOptionsInherited(t *testing.T) {
	for _, onListener := range []bool{true, false} {
		lfd, addr := listenFD(t)
		if onListener && !setOptions(lfd) {
			t.Fatal("setOptions failed on a listener")
		}
		l, ll := &loop{}, &loopListener{id: 1, serial: 1}
		for i := range 2 {
			fd := connectFD(t, lfd, addr)
			if got := l.inherited(ll, fd, true); got != onListener {
				t.Errorf("listener given the options %v: connection %d inherited them %v", onListener, i, got)
			}
			if !onListener {
				setOptions(fd)
			}
			checkOptions(t, fd, fmt.Sprintf("listener given the options %v: connection %d", onListener, i))
		}
	}
	lfd, addr := listenFD(t)
	if !setOptions(lfd) {
		t.Fatal("setOptions failed on a listener")
	}
	l, ll := &loop{}, &loopListener{id: 1, serial: 1, optionsUnset: true}
	if l.inherited(ll, connectFD(t, lfd, addr), true) {
		t.Error("options not set on the listener: a connection was taken to have inherited them")
	}
}

// checkOptions fails t unless connection fd has every one of connOptions.
func checkOptions(t *testing.T, fd int, what string) {
	t.Helper()
	for _, o := range connOptions {
		if v, err := unix.GetsockoptInt(fd, o.Level, o.Opt); err != nil || v != o.Value {
			t.Errorf("%s: option %d (level %d) at %d, %v; want %d", what, o.Opt, o.Level, v, err, o.Value)
		}
	}
}

// listenFD is a TCP listener's descriptor on 127.0.0.1, without the
// options, and its address; closed as the test ends.
func listenFD(t *testing.T) (lfd int, addr string) {
	t.Helper()
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(lfd) })
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 8); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		t.Fatal(err)
	}
	return lfd, fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
}

// A client that connected before the listener was given the options (as
// serve starts: between its listen and the loop's setOptions, a health
// check, a client retrying through a restart) has none of them; the
// connections after it do, and are seen to, where that first one once
// had every later connection set them one by one: five system calls each
// for as long as the server ran.
func TestListenerOptionsInheritedAfterAnEarlyClient(t *testing.T) {
	lfd, addr := listenFD(t)
	fds := []int{connectFD(t, lfd, addr)} // queued before the options
	if !setOptions(lfd) {
		t.Fatal("setOptions failed on a listener")
	}
	fds = append(fds, connectFD(t, lfd, addr), connectFD(t, lfd, addr))
	l, ll := &loop{}, &loopListener{id: 1, serial: 1}
	for i, fd := range fds {
		if got, want := l.inherited(ll, fd, true), i > 0; got != want {
			t.Errorf("connection %d (0: queued before the listener had the options): inherited them %v, want %v", i, got, want)
		}
	}
	if !l.inherited(ll, -1, true) { // looked at, -1 would have no options
		t.Error("after a connection that inherited the options, the next was looked at; want no more looks")
	}
}

// Each loop's accepts from a listener are in its queue's order, the
// loops' among themselves are not: a loop that accepted a client queued
// before the listener had the options may look at it after another
// loop saw a later one inherit them. That one must still be looked at,
// and given them, where it was once served without them (Nagle's
// algorithm and delayed acknowledgements: 40 ms stalls for a client
// that pipelines). So must one a graceful stop's drain accepted and
// handed to a loop whose own later accept had them.
func TestListenerOptionsSeenPerLoop(t *testing.T) {
	early, later := earlyAndLater(t)
	a, b, ll := &loop{}, &loop{}, &loopListener{id: 1, serial: 1}
	if !b.inherited(ll, later, true) {
		t.Fatal("loop B: a connection made after the listener had the options did not inherit them")
	}
	if a.inherited(ll, early, true) {
		t.Error("loop A, after loop B saw a later connection inherit the options: the one queued before them was taken to have them too")
	}
	if !b.inherited(ll, -1, true) { // looked at, -1 would have no options
		t.Error("loop B, after a connection that inherited the options: the next was looked at; want no more looks")
	}
	if b.inherited(ll, early, false) {
		t.Error("loop B, handed the connection queued before the options after its own accept had them: taken to have them too")
	}
	other := &loopListener{id: 1, serial: 2} // the id taken again by the next Serve
	if b.inherited(other, -1, true) {
		t.Error("loop B, the next listener given the same id: its first connection was not looked at")
	}
}

// earlyAndLater are two connections accepted from one listener: one
// queued before the listener was given the options, one after.
func earlyAndLater(t *testing.T) (early, later int) {
	t.Helper()
	lfd, addr := listenFD(t)
	early = connectFD(t, lfd, addr)
	if !setOptions(lfd) {
		t.Fatal("setOptions failed on a listener")
	}
	return early, connectFD(t, lfd, addr)
}

// A graceful stop's drain accepts beside the loops, so a connection it
// hands to a loop may have been queued before the listener had the
// options while the loop's own later accept had them: the loop looks at
// it as it admits it at the stop, and sets them, where taking its own
// answer for it served it without them.
func TestLoopHandedConnectionLookedAt(t *testing.T) {
	early, later := earlyAndLater(t)
	l, ll := handLoop(t, &Server{}, 0), &loopListener{id: 1, serial: 1}
	if !l.inherited(ll, later, true) {
		t.Fatal("a connection made after the listener had the options did not inherit them")
	}
	fd, err := unix.Dup(early) // the loop's to close; early stays the test's
	if err != nil {
		t.Fatal(err)
	}
	l.handed = append(l.handed, handoff{ll: ll, fd: fd})
	l.stop()
	if l.at(fd) == nil {
		t.Fatal("the handed connection was not admitted")
	}
	checkOptions(t, early, "handed at the stop after the loop's own later accept had the options")
}

// A connection with some of the options but not all (queued before
// Serve on a listener whose own Control set TCP_NODELAY) did not
// inherit them: it is given the rest, keep-alive among them.
func TestListenerOptionsInheritedOnlyAll(t *testing.T) {
	lfd, addr := listenFD(t)
	if err := unix.SetsockoptInt(lfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		t.Fatal(err)
	}
	fd := connectFD(t, lfd, addr)
	if (&loop{}).inherited(&loopListener{id: 1, serial: 1}, fd, true) {
		t.Error("a connection with TCP_NODELAY but no keep-alive was taken to have inherited the options")
	}
}

// A loop keeps an answer for each listener it accepts from: one's answer
// is not another's, and a second listener's id, past what the first's
// answer grew the loop's table to, is looked at.
func TestListenerOptionsSeenPerListener(t *testing.T) {
	lfd, addr := listenFD(t)
	if !setOptions(lfd) {
		t.Fatal("setOptions failed on a listener")
	}
	l := &loop{}
	first, second := &loopListener{id: 1, serial: 1}, &loopListener{id: 2, serial: 3} // an id is not its serial
	if !l.inherited(first, connectFD(t, lfd, addr), true) {
		t.Fatal("a connection made after the listener had the options did not inherit them")
	}
	if l.inherited(second, -1, true) { // looked at, -1 would have no options
		t.Error("the second listener's first connection was taken to have the options: the first's answer stood for it")
	}
	if !l.inherited(second, connectFD(t, lfd, addr), true) || !l.inherited(second, -1, true) {
		t.Error("the second listener: after a connection that inherited the options, the next was looked at")
	}
	if !l.inherited(first, -1, true) {
		t.Error("the first listener's answer was lost to the second's")
	}
}

// Loops look at their connections at once, on their own goroutines (run
// with -race): every connection, each loop's in the queue's order, ends
// up with the options (the one queued before them among them, wherever
// it falls), and each loop stops looking once one of its had them.
func TestListenerOptionsInheritedConcurrently(t *testing.T) {
	lfd, addr := listenFD(t)
	fds := []int{connectFD(t, lfd, addr)} // queued before the options
	if !setOptions(lfd) {
		t.Fatal("setOptions failed on a listener")
	}
	for range 7 {
		fds = append(fds, connectFD(t, lfd, addr))
	}
	ll := &loopListener{id: 1, serial: 1}
	loops := make([]*loop, 4)
	var wg sync.WaitGroup
	for i := range loops {
		l := &loop{}
		loops[i] = l
		wg.Go(func() {
			for j := i; j < len(fds); j += len(loops) { // the queue's order, as accept4 gives them
				if !l.inherited(ll, fds[j], true) {
					setOptions(fds[j])
				}
			}
		})
	}
	wg.Wait()
	for i, fd := range fds {
		checkOptions(t, fd, fmt.Sprintf("connection %d (0: queued before the listener had the options)", i))
	}
	for i, l := range loops {
		if !l.inherited(ll, -1, true) { // looked at, -1 would have no options
			t.Errorf("loop %d, after connections that inherited the options: the next was looked at; want no more looks", i)
		}
	}
}

// connectFD connects a client to listener lfd at addr and returns the
// accepted connection's descriptor; both closed as the test ends.
func connectFD(t *testing.T, lfd int, addr string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// gate is an Observer that holds its loop inside the next ConnOpen or
// ConnRead once armed, until released: events pile up behind it as they
// would behind a busy loop.
type gate struct {
	onOpen, onRead atomic.Bool
	entered        chan struct{}
	release        chan struct{}
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}, 1), release: make(chan struct{})}
}

func (g *gate) hold(armed *atomic.Bool) {
	if armed.CompareAndSwap(true, false) {
		g.entered <- struct{}{}
		<-g.release
	}
}

func (g *gate) ConnOpen(*ConnInfo)         { g.hold(&g.onOpen) }
func (g *gate) ConnRead(*ConnInfo, []byte) { g.hold(&g.onRead) }
func (g *gate) ConnClose(*ConnInfo)        {}
func (g *gate) Datagram(*DatagramInfo)     {}
func (g *gate) wait(t *testing.T, what string) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatalf("the loop did not reach %s within 10s", what)
	}
}

// oneLoop serves ln with s on a single event loop, and returns ln's
// address; ln is a TCP listener on 127.0.0.1 if nil.
func oneLoop(t *testing.T, s *Server, ln net.Listener) net.Addr {
	t.Helper()
	if testEngine == EngineGoroutine {
		t.Skip("the loops' own waits")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // the loops are made with the server's first Serve
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		<-served
	})
	// Serve has started the loops once it answers.
	answer(t, dial(t, ln.Addr()), "a")
	return ln.Addr()
}

func dial(t *testing.T, a net.Addr) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(a.Network(), a.String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

func answer(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	write(t, c, msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != strings.ToUpper(msg) {
		t.Fatalf("%v: got %q, %v; want %q", c.LocalAddr(), got, err, strings.ToUpper(msg))
	}
}

// A loop that takes a connection from a backlog of many and then has
// nothing else to do still takes the rest: a listener with more waiting
// does not wake its loop again, it is found by polling.
func TestLoopAcceptsWholeBacklog(t *testing.T) {
	g := newGate()
	addr := oneLoop(t, &Server{Observer: g}, nil)
	g.onOpen.Store(true)
	first := dial(t, addr)
	g.wait(t, "the first connection's open")
	var rest []net.Conn
	for range 48 {
		rest = append(rest, dial(t, addr)) // in the backlog, behind the held loop
	}
	close(g.release)
	// The last is answered only if the loop accepts past its first one
	// with nothing new arriving: the earlier ones have sent nothing.
	answer(t, rest[len(rest)-1], "last")
	for _, c := range append(rest, first) {
		answer(t, c, "x")
	}
}

// More connections than one poll returns are ready at once: those left
// over are served without waiting for new input.
func TestLoopServesMoreThanOnePoll(t *testing.T) {
	g := newGate()
	addr := oneLoop(t, &Server{Observer: g}, nil)
	var conns []net.Conn
	for range 300 { // more than the loop's 256 events a poll
		c := dial(t, addr)
		answer(t, c, "a") // accepted and watched
		conns = append(conns, c)
	}
	g.onRead.Store(true)
	held := dial(t, addr)
	write(t, held, "h")
	g.wait(t, "a read")
	for _, c := range conns {
		write(t, c, "b")
	}
	close(g.release)
	got := make([]byte, 1)
	for i, c := range append(conns, held) {
		want := "B"
		if c == held {
			want = "H"
		}
		if n, err := io.ReadFull(c, got); err != nil || string(got) != want {
			t.Fatalf("connection %d: got %q, %v; want %q", i, got[:n], err, want)
		}
	}
}

// A paused listener that cannot be watched again (epoll_ctl fails: the
// kernel's memory for epoll, or the user's share of it, is spent) stays
// paused, is logged and is tried again later, rather than be left out of
// the loop for good.
func TestResumeRetriesWatch(t *testing.T) {
	ln, raw := rawListener(t)
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	var logs strings.Builder
	l := &loop{srv: &Server{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, ep: ep, events: make([]unix.EpollEvent, 8)}
	ll := &loopListener{l: ln, raw: raw, id: 1}
	raw.Control(func(fd uintptr) { l.pause(ll, int(fd)) })

	fail := failEpollCtl(t)
	l.now = l.paused[0].until
	l.resume()
	if len(l.paused) != 1 || l.paused[0].until != l.now+int64(10*time.Millisecond) {
		t.Fatalf("after a failed resume, paused: %+v; want the listener, for twice its first pause (10ms)", l.paused)
	}
	if want := `msg="accept paused: cannot watch the listener; retrying" listener=` + ln.Addr().String() + ` err="epoll_ctl: no space left on device" retry_in=10ms`; !strings.Contains(logs.String(), want) {
		t.Errorf("logged:\n%s\nwant a line with %s", logs.String(), want)
	}

	// Another loop accepts from the listener, then finds it out of
	// descriptors just as this one retries: neither resets this loop's
	// backoff, which is for a failure of its own, nor silences it.
	ll.accepting()
	l.now = l.paused[0].until
	ll.backOff(l.now)
	l.resume()
	if len(l.paused) != 1 || l.paused[0].until != l.now+int64(20*time.Millisecond) {
		t.Fatalf("after a second failed resume, paused: %+v; want the listener, for twice as long again (20ms)", l.paused)
	}
	if want := `err="epoll_ctl: no space left on device" retry_in=20ms`; !strings.Contains(logs.String(), want) {
		t.Errorf("logged:\n%s\nwant a line with %s", logs.String(), want)
	}

	*fail = false
	l.now = l.paused[0].until
	l.resume()
	if len(l.paused) != 0 {
		t.Fatalf("after a resume that watched it, paused: %+v; want none", l.paused)
	}
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n, err := unix.EpollWait(ep, l.events, 10_000)
	if err != nil || n != 1 || l.events[0].Pad != -1 {
		t.Fatalf("epoll_wait: %d events (%+v), %v; want the listener's", n, l.events[:max(n, 0)], err)
	}
}

// failEpollCtl makes epollCtl fail with ENOSPC (the watches epoll may
// hold are spent) until the test sets *fail to false, and puts it back
// when the test ends. No loop may be running: they read it.
func failEpollCtl(t *testing.T) (fail *bool) {
	fail = new(bool)
	*fail = true
	epollCtl = func(ep, op, fd int, ev *unix.EpollEvent) error {
		if *fail {
			return unix.ENOSPC
		}
		return unix.EpollCtl(ep, op, fd, ev)
	}
	t.Cleanup(func() { epollCtl = unix.EpollCtl })
	return fail
}

// queuedBehind serves ln on one loop, holds the loop in the read of a
// first message "x", has queue put more input behind it, releases the
// loop and wants every byte answered: "X" and the upper case of what
// queue wrote in band, want.
func queuedBehind(t *testing.T, ln net.Listener, want string, queue func(net.Conn)) {
	t.Helper()
	g := newGate()
	c := dial(t, oneLoop(t, &Server{Observer: g}, ln))
	g.onRead.Store(true)
	write(t, c, "x")
	g.wait(t, "the first read")
	queue(c)
	close(g.release)
	got := make([]byte, len(want))
	if n, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("got %q, %v; want %q", got[:n], err, want)
	}
}

// WriteOOB is writeOOB, for the package's external tests.
var WriteOOB = writeOOB

// writeOOB sends b out of band (MSG_OOB).
func writeOOB(c net.Conn, b string) error {
	raw, err := c.(syscall.Conn).SyscallConn()
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

// delivered waits until the peer has acknowledged all c sent, so that it
// is in the server's socket, bounded by 10s.
func delivered(t *testing.T, c net.Conn) {
	t.Helper()
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(10 * time.Second); ; runtime.Gosched() {
		q := -1
		raw.Control(func(fd uintptr) { q, _ = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) })
		if q == 0 {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%d bytes not acknowledged within 10s", q)
		}
	}
}

func unixListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// A TCP read stops short at the urgent mark (telnet's Synch sends one),
// with the input after it still queued and no event to come for it: the
// loop must poll again (EPOLLPRI) rather than wait. The urgent byte
// itself is not part of the stream.
func TestLoopReadsPastUrgentMark(t *testing.T) {
	queuedBehind(t, nil, "XABDE", func(c net.Conn) {
		write(t, c, "ab")
		if err := writeOOB(c, "c"); err != nil {
			t.Fatal(err)
		}
		write(t, c, "de")
		delivered(t, c)
	})
}

// As TestLoopReadsPastUrgentMark, on a Unix stream socket.
func TestLoopReadsPastUnixOOB(t *testing.T) {
	queuedBehind(t, unixListener(t), "XABDE", func(c net.Conn) {
		write(t, c, "ab")
		if err := writeOOB(c, "c"); err != nil {
			t.Skip("no MSG_OOB on Unix sockets here (Linux 5.15 added it):", err)
		}
		write(t, c, "de") // a Unix socket's writes are queued at the peer when they return
	})
}

// A Unix stream read stops short after a message that passed descriptors,
// and no event comes for what is behind it.
func TestLoopReadsPastPassedDescriptors(t *testing.T) {
	queuedBehind(t, unixListener(t), "XABDE", func(c net.Conn) {
		if _, _, err := c.(*net.UnixConn).WriteMsgUnix([]byte("ab"), unix.UnixRights(int(os.Stdin.Fd())), nil); err != nil {
			t.Fatal(err)
		}
		write(t, c, "de")
	})
}

// A reply the client is slow to take waits, watched for EPOLLOUT only,
// with input queued behind it. Once it drains, watching for input again
// (EPOLL_CTL_MOD) wakes no one when the connection is on the epoll set's
// ready list already, as it is, just reported writable: the loop must
// poll again.
func TestLoopReadsAfterReplyDrains(t *testing.T) {
	lc := net.ListenConfig{Control: bufferSize(unix.SO_SNDBUF, 4096)} // the connections inherit it
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := newGate()
	addr := oneLoop(t, &Server{Observer: g, ReadSize: 4096}, ln)
	g.onOpen.Store(true)
	d := net.Dialer{Timeout: 10 * time.Second, Control: bufferSize(unix.SO_RCVBUF, 4096)}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	g.wait(t, "the connection's open")
	msg := bytes.Repeat([]byte("abcdefghij"), 4000) // fits the server's receive window, and is far more than the replies' way holds
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	delivered(t, c)
	close(g.release)
	got := make([]byte, len(msg))
	if n, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, bytes.ToUpper(msg)) {
		t.Fatalf("got %d of %d bytes, %v", n, len(msg), err)
	}
}

// A listener whose socket another descriptor still holds (systemd's,
// which passed it; a File taken from it) leaves the loops' epoll sets
// when the server closes it. Closing it alone would leave it there, and
// the loops would be handed its queued clients with nothing to accept
// them: at Shutdown, over and over, while a client lingers.
func TestLoopUnwatchesListenerHeldElsewhere(t *testing.T) {
	ln, ino := heldListener(t)
	s := &Server{Linger: time.Minute}
	addr := oneLoop(t, s, ln)
	watched := func() bool { return strings.Contains(epollSet(t, s), ino) }
	if !watched() {
		t.Fatal("the listener is not in the loop's epoll set to begin with")
	}
	c := dial(t, addr)
	answer(t, c, "a") // stays open: the loop lingers on it after Shutdown
	stopped := make(chan error, 1)
	go func() { stopped <- s.Shutdown(t.Context()) }()
	if _, err := c.Read(make([]byte, 1)); err != io.EOF { // the loop has stopped it
		t.Fatalf("read after Shutdown: %v, want EOF", err)
	}
	if watched() {
		t.Error("the listener, closed at Shutdown, is still in the loop's epoll set")
	}
	s.Close() // oneLoop's own client lingers too
	<-stopped
}

// heldListener returns a TCP listener on 127.0.0.1 whose socket a File
// also holds until the test ends, as systemd holds the sockets it
// passes, and the text by which /proc lists that socket in an epoll set
// (see epollSet).
func heldListener(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var st unix.Stat_t
	raw, err := f.SyscallConn() // not f.Fd(), which would make the shared socket blocking
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(fd uintptr) { err = unix.Fstat(int(fd), &st) })
	if err != nil {
		t.Fatal(err)
	}
	return ln, fmt.Sprintf(" ino:%x ", st.Ino)
}

// epollSet is what /proc says of the epoll set of s's first loop: a
// line for each entry, with its events and its file's inode.
func epollSet(t *testing.T, s *Server) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	ep := s.loops.all[0].ep
	if ep < 0 {
		t.Fatal("the loop is done")
	}
	info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", ep))
	if err != nil {
		t.Fatal(err)
	}
	return string(info)
}

// A listener closed from outside while something else holds its socket
// stays in the loops' epoll sets: its descriptor is gone, so nothing can
// take it out. Once clients queue on it, a loop renews its set without
// it, keeping every connection as it was: one that reads, one whose
// reply waits for the client, and the listener that took the closed
// one's place (and its id). Before, the closed one was reported at every
// poll, and accepted from as the new one.
//
// The waiting client's input is all in the server's receive queue before
// the loop answers any of it. A client that went on sending as its own
// receive queue overflowed (32 MiB, against a 4 MiB send buffer) stalled
// under load: the loop, late for a moment, closed the server's window,
// and on loopback (Linux 6.18) the client, its queue over its buffer,
// took none of the window updates that followed; it sent 189 KiB, then
// zero-window probes 22 s apart, while the loop had answered all that
// came and its socket had taken every byte (TCP retransmits to the full
// client 26 s apart). The test waited 30 s for a reply that never waited.
func TestLoopLeavesListenerClosedElsewhere(t *testing.T) {
	ln, ino := heldListener(t)
	// The connections inherit it: a reply's way holds a few KiB, not the
	// megabytes to which Linux grows a send buffer.
	raw, err := ln.(*net.TCPListener).SyscallConn()
	if err == nil {
		err = bufferSize(unix.SO_SNDBUF, 4096)("", "", raw)
	}
	if err != nil {
		t.Fatal(err)
	}
	g := newGate()
	s := &Server{Observer: g, ReadSize: 4096}
	addr := oneLoop(t, s, ln)
	watched := func() bool { return strings.Contains(epollSet(t, s), ino) }

	reading := dial(t, addr)
	answer(t, reading, "a")
	// waiting sends more than the replies' way holds, reading nothing, so
	// that its reply waits for the socket to take it.
	g.onOpen.Store(true)
	d := net.Dialer{Timeout: 10 * time.Second, Control: bufferSize(unix.SO_RCVBUF, 4096)}
	waiting, err := d.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	waiting.SetDeadline(time.Now().Add(20 * time.Second))
	g.wait(t, "the waiting connection's open")
	msg := bytes.Repeat([]byte("abcdefghij"), 4000) // fits the server's receive window
	if _, err := waiting.Write(msg); err != nil {
		t.Fatal(err)
	}
	delivered(t, waiting)
	close(g.release)
	waitFor(t, "a reply waiting for its socket", func() bool {
		// (the kernel adds EPOLLERR and EPOLLHUP to every entry's events)
		return strings.Contains(epollSet(t, s), fmt.Sprintf(" events: %8x ", unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP))
	})

	ln.Close()
	waitFor(t, "the closed listener's Serve to end", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return slices.IndexFunc(*s.loops.listeners.Load(), func(ll *loopListener) bool { return ll != nil }) < 0
	})
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln2) }()
	defer func() {
		s.Close()
		if err := <-served; err != ErrServerClosed {
			t.Errorf("the second listener's Serve: %v", err)
		}
	}()
	other := dial(t, ln2.Addr())
	answer(t, other, "b")
	if s.loops.listeners.Load() == nil || (*s.loops.listeners.Load())[0] == nil {
		t.Fatal("the second listener did not take the first one's place")
	}
	if !watched() {
		t.Fatal("the closed listener left the loop's epoll set at once: nothing to test")
	}

	dial(t, addr) // queues on the closed listener's socket, which heldListener's File holds
	// Each answer takes a poll, which reports the closed listener; the
	// loop leaves it after the second, before the poll after it.
	for i := 0; i < 20 && watched(); i++ {
		answer(t, reading, "c")
	}
	if watched() {
		t.Fatal("after 20 polls that reported it, the closed listener is still in the loop's epoll set")
	}

	answer(t, reading, "d")
	answer(t, other, "e")
	answer(t, dial(t, ln2.Addr()), "f")
	got := make([]byte, len(msg))
	if n, err := io.ReadFull(waiting, got); err != nil || !bytes.Equal(got, bytes.ToUpper(msg)) {
		t.Errorf("the waiting reply: %d of %d bytes, %v", n, len(msg), err)
	}
}

// The same at Shutdown: while a connection lingers, the loop polls after
// every batch, and a closed listener's entry with a client queued on it
// would have it poll without a pause until the last one closed.
func TestLoopLeavesListenerClosedElsewhereAtShutdown(t *testing.T) {
	ln, ino := heldListener(t)
	s := &Server{Linger: time.Minute}
	stopped := stopWithClosedListener(t, s, ln)
	waitFor(t, "the stopping loop to leave the closed listener", func() bool {
		return !strings.Contains(epollSet(t, s), ino)
	})
	s.Close()
	<-stopped
}

// stopWithClosedListener serves ln (from heldListener) with s on one
// loop, keeps a connection open, closes ln from outside with a client
// queued on its socket, and starts Shutdown, which the open connection
// holds up while s.Linger lasts. It returns once the loop has stopped
// that connection; Shutdown's result comes on the channel.
func stopWithClosedListener(t *testing.T, s *Server, ln net.Listener) <-chan error {
	t.Helper()
	addr := oneLoop(t, s, ln)
	c := dial(t, addr)
	answer(t, c, "a") // stays open: the loop lingers on it after Shutdown
	ln.Close()
	dial(t, addr) // queues on the closed listener's socket
	stopped := make(chan error, 1)
	go func() { stopped <- s.Shutdown(t.Context()) }()
	if _, err := c.Read(make([]byte, 1)); err != io.EOF { // the loop has stopped it
		t.Fatalf("read after Shutdown: %v, want EOF", err)
	}
	return stopped
}

// A stopping loop that cannot renew its set (out of descriptors) waits
// between polls while its connections linger, as any loop does: it does
// not poll without a pause, handed the closed listener's entry each time.
// (Found in review: it made some 750,000 polls in 500 ms.)
func TestStoppingLoopWaitsWhileRenewFails(t *testing.T) {
	if testEngine == EngineGoroutine {
		t.Skip("the loops' own waits")
	}
	// Set before the loops start and put back after they end: they read it.
	epollCreate = func(int) (int, error) { return -1, unix.EMFILE }
	t.Cleanup(func() { epollCreate = unix.EpollCreate1 })
	ln, _ := heldListener(t)
	failed := make(chan struct{})
	var once sync.Once
	logs := writerFunc(func(p []byte) (int, error) {
		if bytes.Contains(p, []byte("cannot leave a listener")) {
			once.Do(func() { close(failed) })
		}
		return len(p), nil
	})
	s := &Server{Linger: time.Minute, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	stopped := stopWithClosedListener(t, s, ln)
	select {
	case <-failed:
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not try to renew its set within 10 s")
	}
	time.Sleep(100 * time.Millisecond) // the lingering (what is tested, not a wait for an event)
	s.Close()
	<-stopped
	if polls := s.loops.all[0].polls; polls > 1000 { // read once the loop has ended
		t.Errorf("the stopping loop polled %d times while its set held the closed listener; want a few", polls)
	}
}

// A loop that cannot renew its epoll set keeps the one it has, logs why,
// and tries again only after a second, then two: each try costs a system
// call for each connection, and a loop that tried at every poll would
// spin, handed the closed listener each time. (Found in review: it did.)
func TestRenewBacksOff(t *testing.T) {
	ln, raw := rawListener(t)
	ll := &loopListener{l: ln, raw: raw, id: 1, serial: 1}
	set := &loops{}
	set.listeners.Store(&[]*loopListener{ll})
	old, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	pf, _, err := pollable(old)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { pf.Close() }()
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(wake)
	var logs strings.Builder
	l := &loop{srv: &Server{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, set: set,
		ep: old, wake: wake, pollFile: pf, events: make([]unix.EpollEvent, 8)}

	fail := failEpollCtl(t)
	// reported polls the closed listener's report in two polls in a row,
	// at loop time now, and reports whether the loop is to renew.
	reported := func(now time.Duration) bool {
		l.now = int64(now)
		for range 2 {
			l.polls++
			l.gone()
		}
		return l.stale
	}

	if !reported(0) {
		t.Fatal("a listener reported in two polls in a row does not make the loop renew its set")
	}
	l.renew()
	if l.ep != old || l.stale {
		t.Fatalf("after a failed renew, the loop's set is %d (want %d, kept) and stale is %v", l.ep, old, l.stale)
	}
	if want := `msg="event loop: cannot leave a listener closed while its socket is held elsewhere; retrying" err="epoll_ctl: no space left on device" retry_in=1s`; !strings.Contains(logs.String(), want) {
		t.Errorf("logged:\n%s\nwant a line with %s", logs.String(), want)
	}
	if reported(time.Second - 1) {
		t.Fatal("the loop renews again within a second of failing to")
	}
	if !reported(time.Second) {
		t.Fatal("the loop does not renew again a second after failing to")
	}
	l.renew()
	if !strings.Contains(logs.String(), "retry_in=2s") || reported(3*time.Second-1) || !reported(3*time.Second) {
		t.Fatalf("after a second failure, the loop does not wait twice as long; logged:\n%s", logs.String())
	}

	// One listener served twice but watched once (the second Serve came
	// while the first was paused) is no failure. (Found in review.)
	set.listeners.Store(&[]*loopListener{ll, {l: ln, raw: raw, id: 2, serial: 2}})
	*fail = false
	l.renew()
	if l.ep == old || l.renewWait != 0 {
		t.Fatalf("after a renew that worked, the loop's set is %d (the old one: %v), its wait %v", l.ep, l.ep == old, l.renewWait)
	}
	pf = l.pollFile
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n, err := unix.EpollWait(l.ep, l.events, 10_000)
	if err != nil || n != 1 || l.events[0].Pad != -1 || l.events[0].Fd != 1 {
		t.Fatalf("epoll_wait on the new set: %d events (%+v), %v; want the listener's", n, l.events[:max(n, 0)], err)
	}
}

// A second Serve of a listener the loops serve already waits beside the
// first, as two goroutine-driver Serves of one listener both accept: it
// does not close the listener under the first.
func TestLoopServeTwice(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{}
	addr := oneLoop(t, s, ln)
	waiting := make(chan struct{}, 1)
	servedTwice = func() { waiting <- struct{}{} }
	defer func() { servedTwice = nil }()
	second := make(chan error, 1)
	go func() { second <- s.Serve(ln) }()
	select {
	case <-waiting:
	case err := <-second:
		t.Fatalf("the second Serve returned at once: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the second Serve neither waits nor returns")
	}
	answer(t, dial(t, addr), "still served")
	s.Close()
	if err := <-second; err != ErrServerClosed {
		t.Errorf("the second Serve: %v, want ErrServerClosed", err)
	}
}

// Two Serves of one listener, the second waiting beside the first, each
// have an entry of their own (as with net/http, keyed by Serve's own
// variable), and once the listener is closed from outside both return
// net.ErrClosed and drop their entries: one left behind would keep the
// server serving (servesNothing), its loops and timeout watcher running.
func TestLoopServeTwiceClosedFromOutside(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{}
	oneLoop(t, s, ln)
	waiting := make(chan struct{}, 1)
	servedTwice = func() { waiting <- struct{}{} }
	defer func() { servedTwice = nil }()
	second := make(chan error, 1)
	go func() { second <- s.Serve(ln) }()
	select {
	case <-waiting:
	case err := <-second:
		t.Fatalf("the second Serve returned at once: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the second Serve neither waits nor returns")
	}
	entries := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.listeners)
	}
	if n := entries(); n != 2 {
		t.Errorf("%d listener entries with two Serves, want 2", n)
	}
	ln.Close()
	select {
	case err := <-second:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("the second Serve: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second Serve did not return once its listener was closed")
	}
	waitFor(t, "both Serves to drop their entries", func() bool { return entries() == 0 })
}

// burstObserver counts the reads of a loop's connections. Once armed,
// it holds the loop in the next open until released, and then notes how
// many reads there had been when the last of a burst of opens came.
type burstObserver struct {
	armed   atomic.Bool
	held    chan struct{} // closed when the loop is held
	release chan struct{}
	opens   atomic.Int64 // since armed
	reads   atomic.Int64
	endAt   atomic.Int64
}

func (o *burstObserver) ConnOpen(*ConnInfo) {
	if !o.armed.Load() {
		return
	}
	if o.opens.Add(1) == 1 {
		close(o.held)
		<-o.release
	}
	o.endAt.Store(o.reads.Load())
}
func (o *burstObserver) ConnRead(*ConnInfo, []byte) { o.reads.Add(1) }
func (o *burstObserver) ConnClose(*ConnInfo)        {}
func (o *burstObserver) Datagram(*DatagramInfo)     {}

// A loop busy with clients that always have input, so that each poll
// hands it about one read for each, takes a queue of new connections in
// a few polls, not one connection per poll. (Found in review: taking one
// per report of the listener took 31 polls for 32 connections.)
func TestLoopAcceptsBurstWhileBusy(t *testing.T) {
	obs := &burstObserver{held: make(chan struct{}), release: make(chan struct{})}
	addr := oneLoop(t, &Server{Observer: obs}, nil)
	const busy, burst = 100, 32
	stop := make(chan struct{})
	done := make(chan struct{}, 2*busy)
	payload := bytes.Repeat([]byte("x"), 4<<10)
	for range busy {
		c := dial(t, addr)
		go func() { io.Copy(io.Discard, c); done <- struct{}{} }()
		go func() {
			defer func() { c.Close(); done <- struct{}{} }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.Write(payload); err != nil {
					return
				}
			}
		}()
	}
	defer func() {
		close(stop)
		for range 2 * busy {
			<-done
		}
	}()
	// Every busy client has been read from a few times: they stream.
	waitFor(t, "the busy clients' reads", func() bool { return obs.reads.Load() >= 4*busy })
	obs.armed.Store(true)
	cs := []net.Conn{dial(t, addr)}
	<-obs.held // the loop, in that connection's open, takes no more
	for range burst {
		cs = append(cs, dial(t, addr)) // queued: the handshake is the kernel's
	}
	start := obs.reads.Load()
	close(obs.release)
	waitFor(t, "the burst's opens", func() bool { return obs.opens.Load() >= burst+1 })
	for _, c := range cs {
		c.Close()
	}
	between := obs.endAt.Load() - start
	t.Logf("%d reads of the busy clients while the loop took %d queued connections", between, burst)
	if between > 4*busy {
		t.Errorf("the loop made %d reads (%.1f polls' worth) while it took %d queued connections: too few a poll",
			between, float64(between)/busy, burst)
	}
}

// waitFor waits until cond holds, for at most 30 s, looking every
// millisecond: the counters it reads have no event to wait on.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30 s for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A stopping connection whose owed bytes have not come within the stop's
// wait is closed, unless they are there, in its receive queue: its loop,
// kept from running past the wait (a busy machine), has yet to read them,
// and closing then would drop them unanswered. Under load, two shutdown
// tests found them so. Once they are read, the same sweep closes it.
func TestStopSweepWaitsForBytesQueued(t *testing.T) {
	l := handLoop(t, &Server{Linger: time.Hour}, 0)
	c, client := handConn(t, l)
	io.WriteString(client, "owed\n")
	delivered(t, client) // in the server's receive queue
	l.setState(c, stopping)
	l.now = int64(3 * time.Hour) // far past the wait for the owed bytes (Linger)
	l.sweep()
	if c.state != stopping {
		t.Fatalf("with its owed bytes queued unread, the sweep moved it to state %d; want it still stopping, to read them", c.state)
	}
	if n, err := unix.Read(int(c.fd), make([]byte, 64)); n != 5 || err != nil {
		t.Fatalf("read %d, %v", n, err)
	}
	l.sweep()
	if c.state != lingering {
		t.Errorf("with nothing queued, the sweep left it in state %d; want it closed gracefully (lingering)", c.state)
	}
}

// A write the kernel takes part of leaves the rest pending, down to the
// last byte: whether the reply's first write or a later one, of what
// waited, falls one byte short, the client reads the whole reply before
// the end of file. The kernel takes part of a write only when its send
// buffer is full, and seldom all but one byte: writeTakes stands in for
// it. Such a kernel wakes the loop once it has room again, and a loop
// parks after a write that did not finish, to wait for that; here the
// client's end of file, sent once it has read what was written, wakes it.
func TestLoopPartialWriteKeepsTheRest(t *testing.T) {
	tests := []struct {
		name  string
		takes []int // at most how many bytes each write takes, in turn; then all
	}{
		{"first write takes all but one", []int{3}},
		{"pending write takes all but one", []int{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu    sync.Mutex
				takes []int // armed once the loop serves
			)
			s := &Server{}
			setWriteTakes(t, s, func(n int) (int, syscall.Errno) {
				mu.Lock()
				defer mu.Unlock()
				if len(takes) == 0 {
					return n, 0
				}
				k := min(takes[0], n)
				takes = takes[1:]
				return k, 0
			})
			c := dial(t, oneLoop(t, s, nil))
			mu.Lock()
			takes = tt.takes
			mu.Unlock()
			write(t, c, "abcd")
			got := make([]byte, 3)
			if _, err := io.ReadFull(c, got); err != nil || string(got) != "ABC" {
				t.Fatalf("got %q, %v; want \"ABC\"", got, err)
			}
			if err := c.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if got, err := io.ReadAll(c); err != nil || string(got) != "D" {
				t.Errorf("after \"ABC\", got %q, %v; want \"D\" and end of file", got, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(takes) > 0 {
				t.Errorf("writes left %v of their short takes untried", takes)
			}
		})
	}
}

// setWriteTakes sets writeTakes to f for the loops of s, which are not
// started yet, and unsets it once they have ended. Every loop's writes
// read it: no other server's loops may run meanwhile (no test here runs
// in parallel, and each ends its servers).
func setWriteTakes(t *testing.T, s *Server, f func(n int) (int, syscall.Errno)) {
	writeTakes = f
	t.Cleanup(func() { // after oneLoop's, which closes s
		<-s.Ended()
		writeTakes = nil
	})
}

// closes is an Observer that passes on each connection's ConnInfo at its
// close.
type closes chan ConnInfo

func (closes) ConnOpen(*ConnInfo)          {}
func (closes) ConnRead(*ConnInfo, []byte)  {}
func (ch closes) ConnClose(info *ConnInfo) { ch <- *info }
func (closes) Datagram(*DatagramInfo)      {}

// of waits for the server's close of client c, and returns its ConnInfo.
func (ch closes) of(t *testing.T, c net.Conn) ConnInfo {
	t.Helper()
	for end := time.After(10 * time.Second); ; {
		select {
		case info := <-ch:
			if info.Remote.String() == c.LocalAddr().String() {
				return info
			}
		case <-end:
			t.Fatalf("%v was not closed within 10 s", c.LocalAddr())
		}
	}
}

// heldStop is a server on one loop whose writes take nothing while hold
// is set, as when the client's send buffer is full, for a Shutdown that
// comes while a reply waits. c is the client a test watches; other, one
// answered too, whose end of file tells that the loop's stop is done.
type heldStop struct {
	s        *Server
	hold     atomic.Bool
	held     chan struct{} // sent on when a held write took nothing
	c, other net.Conn
}

// newHeldStop serves s with an hour's Linger, so that no graceful close
// ends before the test has looked: they end at its Close.
func newHeldStop(t *testing.T, s *Server) *heldStop {
	t.Helper()
	h := &heldStop{s: s, held: make(chan struct{}, 1)}
	s.Linger = time.Hour
	setWriteTakes(t, s, func(n int) (int, syscall.Errno) {
		if !h.hold.Load() {
			return n, 0
		}
		select {
		case h.held <- struct{}{}:
		default:
		}
		return 0, 0 // (writable still: found at the next poll, which a wake brings)
	})
	addr := oneLoop(t, s, nil)
	h.other = dial(t, addr)
	answer(t, h.other, "x")
	h.c = dial(t, addr)
	answer(t, h.c, "ab")
	return h
}

// waitHeld waits until a write took nothing, as it was held.
func (h *heldStop) waitHeld(t *testing.T, what string) {
	t.Helper()
	select {
	case <-h.held:
	case <-time.After(10 * time.Second):
		t.Fatalf("the loop did not write %s within 10 s", what)
	}
}

// shutdown starts s's Shutdown; s is closed at the test's end (the lingers
// are an hour).
func (h *heldStop) shutdown(t *testing.T) {
	stopped := make(chan error, 1)
	go func() { stopped <- h.s.Shutdown(t.Context()) }()
	t.Cleanup(func() {
		h.s.Close()
		<-stopped
	})
}

// release waits until the loop's stop is done, then lets the writes
// through and wakes the loop, to find c writable.
func (h *heldStop) release(t *testing.T) {
	t.Helper()
	if _, err := io.ReadAll(h.other); err != nil { // stopped, gracefully
		t.Fatal(err)
	}
	h.hold.Store(false)
	write(t, h.other, "z")
}

// A client that ended its input before the server's Shutdown, whose last
// reply (the incomplete character held at its end of file) was still
// being written when it came, ends as it ended itself, with ReasonEOF, as
// it does with the goroutine driver: the stop leaves it to finish. A loop
// that took it as reading yet stopped it, and it ended for the Shutdown.
func TestLoopEOFReplyWaitingAtShutdown(t *testing.T) {
	obs := make(closes, 10)
	h := newHeldStop(t, &Server{Observer: obs})
	h.hold.Store(true)
	write(t, h.c, "\xc3") // the first byte of a two-byte character: held
	if err := h.c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	h.waitHeld(t, "the held byte") // at c's end of file, which the loop has read
	h.shutdown(t)
	h.release(t)
	if got, err := io.ReadAll(h.c); err != nil || len(got) == 0 {
		t.Fatalf("after the Shutdown, c read %q, %v; want its held byte answered, then end of file", got, err)
	}
	if info := obs.of(t, h.c); info.Reason != ReasonEOF {
		t.Errorf("closed for %v, want %v", info.Reason, ReasonEOF)
	}
}

// A connection stopped by Shutdown whose answer waits to be written (a
// reply the client is slow to take, or the incomplete character its input
// ended in, answered at the stop) closes gracefully once it is: the
// client reads it, then end of file, without waiting for the Linger.
func TestLoopStopsAfterItsReplyWaited(t *testing.T) {
	tests := []struct{ name, msg, want string }{
		{"reply waiting at the stop", "ab", "AB"},
		{"held character answered at the stop", "\xc3", "\xc3"}, // the first byte of a two-byte character
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGate()
			h := newHeldStop(t, &Server{Observer: g})
			h.hold.Store(true)
			g.onRead.Store(true)
			write(t, h.c, tt.msg)
			g.wait(t, "c's read") // before the stop: read once it came, it would be owed
			close(g.release)
			h.shutdown(t)
			h.waitHeld(t, "c's answer")
			h.release(t)
			if got, err := io.ReadAll(h.c); err != nil || string(got) != tt.want {
				t.Fatalf("after the Shutdown, c read %q, %v; want %q, then end of file", got, err, tt.want)
			}
		})
	}
}

// A connection is idle from its accept, not from the loop's start: one
// accepted by a loop that has run for longer than IdleTimeout is not
// closed as idle at the next sweep. (A test whose connection came soon
// after its loop started could not tell.)
func TestLoopIdleFromTheAccept(t *testing.T) {
	l := handLoop(t, &Server{IdleTimeout: time.Hour}, 3*time.Hour) // it has run for three IdleTimeouts
	c, _ := handConn(t, l)
	l.sweep()
	if c.state != reading {
		t.Errorf("just accepted, the sweep moved it to state %d (closing as idle); want it still reading", c.state)
	}
}

// handLoop makes an event loop for s as Serve does, one that has run for
// ran, but does not run it: the test calls its methods, as its run would.
// What it holds is closed at the test's end.
func handLoop(t *testing.T, s *Server, ran time.Duration) *loop {
	t.Helper()
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	s.observer()
	set := &loops{epoch: time.Now().Add(-ran)}
	set.listeners.Store(new([]*loopListener))
	l, err := s.newLoop(set)
	if err != nil {
		t.Fatal(err)
	}
	l.tick()
	t.Cleanup(func() {
		l.closeEvery()
		l.closeFDs()
		putBuf(l.obuf)
	})
	return l
}

// handConn has l accept a connection from a TCP listener on 127.0.0.1, as
// a loop does, and returns it and the client's end.
func handConn(t *testing.T, l *loop) (*lconn, net.Conn) {
	t.Helper()
	ln, raw := rawListener(t)
	client := dial(t, ln.Addr())
	awaitQueued(t, raw)
	fd := -1
	var rsa unix.RawSockaddrAny
	var err error
	raw.Control(func(lfd uintptr) { fd, err = acceptFD(int(lfd), &rsa) })
	if err != nil {
		t.Fatalf("accepting: %v", err)
	}
	l.admit(&loopListener{l: ln, raw: raw, id: 1, serial: 1, local: ln.Addr()}, fd, &rsa, true)
	c := l.at(fd)
	if c == nil {
		t.Fatal("the connection was not admitted")
	}
	return c, client
}

// Each listener the loops are given has a serial of its own, from 1 (0
// is a loop's "none" in inherits), and an id taken again comes with a new
// one: a loop's answer for one listener stands for no other's
// connections.
func TestLoopListenerSerials(t *testing.T) {
	set := &loops{}
	set.listeners.Store(new([]*loopListener))
	a, b, c := &loopListener{}, &loopListener{}, &loopListener{}
	set.add(a)
	set.add(b)
	set.remove(a)
	set.add(c)
	if c.id != a.id || a.serial < 1 || b.serial <= a.serial || c.serial <= b.serial {
		t.Errorf("ids %d, %d, %d (the third taking the first's again) have serials %d, %d, %d; want them from 1, each above the last",
			a.id, b.id, c.id, a.serial, b.serial, c.serial)
	}
}

// The loops set the options on a TCP listener they serve, and know they
// did: its connections are looked at, not each given them (five system
// calls a connection).
func TestLoopListenerGivenOptions(t *testing.T) {
	s := &Server{}
	oneLoop(t, s, nil)
	s.mu.Lock()
	lls := *s.loops.listeners.Load()
	s.mu.Unlock()
	if len(lls) != 1 || lls[0] == nil {
		t.Fatalf("the loops serve %d listeners (%v); want the one", len(lls), lls)
	}
	if lls[0].optionsUnset {
		t.Error("a TCP listener given the options was taken not to have them: each connection is given them")
	}
	checkOptions(t, lls[0].fd, "the listener")
}

// awaitQueued waits until listener raw is readable: a client is
// connected once Dial returns, but maybe not yet in the backlog.
func awaitQueued(t *testing.T, raw syscall.RawConn) {
	t.Helper()
	var err error
	raw.Control(func(lfd uintptr) {
		pfd := []unix.PollFd{{Fd: int32(lfd), Events: unix.POLLIN}}
		for end := time.Now().Add(10 * time.Second); ; {
			if _, err = unix.Poll(pfd, max(int(time.Until(end).Milliseconds()), 0)); err != unix.EINTR {
				break // (interrupted by the runtime's preemption signal, it waits on)
			}
		}
		if err == nil && pfd[0].Revents&unix.POLLIN == 0 {
			err = errors.New("no client queued")
		}
	})
	if err != nil {
		t.Fatalf("waiting 10 s for a client to queue: %v", err)
	}
}

// A loop's own accepts answer for its later ones: once it accepted a
// connection seen to inherit the options from a listener given them, it
// looks at none after it from that listener, where each once cost five
// system calls.
func TestLoopAcceptKeepsItsAnswer(t *testing.T) {
	l := handLoop(t, &Server{}, 0)
	ln, raw := rawListener(t)
	ok := false
	raw.Control(func(lfd uintptr) { ok = setOptions(int(lfd)) })
	if !ok {
		t.Fatal("setOptions failed on a listener")
	}
	ll := &loopListener{l: ln, raw: raw, id: 1, serial: 1, local: ln.Addr()}
	l.set.listeners.Store(&[]*loopListener{ll})
	dial(t, ln.Addr())
	awaitQueued(t, raw)
	l.accept(ll.id, ll.serial)
	if l.open != 1 {
		t.Fatalf("the loop accepted %d connections; want 1", l.open)
	}
	if !l.inherited(ll, -1, true) { // looked at, -1 would have no options
		t.Error("after the loop accepted a connection that inherited the options, the next was looked at")
	}
}

// A negative Linger is no wait: a graceful close closes at once, rather
// than linger until the next sweep.
func TestLoopNegativeLingerClosesAtOnce(t *testing.T) {
	l := handLoop(t, &Server{Linger: -1}, 0)
	c, client := handConn(t, l)
	fd := int(c.fd)
	l.closeGracefully(c, ReasonIdleTimeout)
	if l.at(fd) == c {
		t.Fatalf("with a negative Linger, the graceful close left it in state %d; want it closed", c.state)
	}
	if n, err := client.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("the client read %d, %v; want end of file", n, err)
	}
}

// A loop counts the connections that need sweeps (stopping or lingering)
// down again as they move on and close: once none is left, it no longer
// wakes to sweep.
func TestLoopSweepsEndWithTheSlowConnections(t *testing.T) {
	l := handLoop(t, &Server{Linger: time.Hour}, 0)
	c, _ := handConn(t, l)
	l.setState(c, stopping)
	if l.slow != 1 || l.sweepEvery() < 0 {
		t.Errorf("one connection stopped: %d counted, sweeps every %v; want 1, and sweeps", l.slow, l.sweepEvery())
	}
	l.setState(c, lingering)
	if l.slow != 1 {
		t.Errorf("one connection stopped, then lingering: %d counted; want 1", l.slow)
	}
	l.close(c, ReasonShutdown)
	if l.slow != 0 || l.sweepEvery() >= 0 {
		t.Errorf("after its close, %d counted and sweeps every %v; want none, and none", l.slow, l.sweepEvery())
	}
}

// A reply whose write fails for another reason than a reset or a broken
// pipe (here, keep-alive gave up on the client) ends the connection with
// ReasonError and the error worded as net's are: a write's.
func TestLoopWriteErrorNamed(t *testing.T) {
	var fail atomic.Bool
	obs := make(closes, 10)
	s := &Server{Observer: obs}
	setWriteTakes(t, s, func(n int) (int, syscall.Errno) {
		if fail.Load() {
			return 0, unix.ETIMEDOUT
		}
		return n, 0
	})
	c := dial(t, oneLoop(t, s, nil))
	fail.Store(true)
	write(t, c, "a")
	info := obs.of(t, c)
	var op *net.OpError
	if info.Reason != ReasonError || !errors.As(info.Err, &op) || op.Op != "write" || !errors.Is(info.Err, unix.ETIMEDOUT) {
		t.Errorf("closed for %v, %v; want %v, a write's ETIMEDOUT", info.Reason, info.Err, ReasonError)
	}
}
