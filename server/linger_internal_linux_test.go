package server

import (
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// lingerPair is a loopback connection: the server's side, then the
// client's, each closed with the test.
func lingerPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	return sc.(*net.TCPConn), cc.(*net.TCPConn)
}

// feedConn is a client that sends without a pause for ever: a read
// returns input at once until the read deadline passes, as a socket's
// does, then the deadline's error. (The connection as accepted, which the
// linger peeks at, has a byte waiting all along: a read the deadline cut
// finds input waiting, as a goroutine that ran late would.) It notes the
// first read deadline set past bound after the first deadline, and ends
// (end of file) at the first read after one, or after 10 s. It counts the
// deadlines set.
type feedConn struct {
	net.Conn
	bound           time.Duration
	first, deadline time.Time
	beyond          time.Time
	sets            int
}

func (f *feedConn) SetReadDeadline(t time.Time) error {
	if f.sets++; f.first.IsZero() {
		f.first = time.Now()
	}
	if f.deadline = t; f.beyond.IsZero() && t.After(f.first.Add(f.bound)) {
		f.beyond = t
	}
	return nil
}

func (f *feedConn) Read(p []byte) (int, error) {
	switch now := time.Now(); {
	case !f.beyond.IsZero() || now.After(f.first.Add(10*time.Second)):
		return 0, io.EOF
	case !now.Before(f.deadline):
		return 0, os.ErrDeadlineExceeded
	}
	return len(p), nil
}

// lingerOnFeed runs a lingering close (a Linger of 5 ms) of a connection
// whose client keeps sending: a real socket with input waiting, whose
// reads feedConn fakes, and says how its read deadline was set.
func lingerOnFeed(t *testing.T) *feedConn {
	t.Helper()
	sc, cc := lingerPair(t)
	if _, err := cc.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	waitReadable(t, sc)
	const linger = 5 * time.Millisecond
	f := &feedConn{Conn: sc, bound: lingerBound(linger)}
	c := &conn{srv: &Server{Linger: linger, Logger: slog.New(slog.DiscardHandler)}, accepted: sc, c: f}
	c.linger()
	return f
}

// A lingering close gives up after maxLingerRounds Lingers, however long
// the client keeps sending: its read deadline is never set past that,
// which only the deadline's end can tell, the reads all finding input.
func TestLingerGivesUpWhileInputKeepsComing(t *testing.T) {
	f := lingerOnFeed(t)
	if !f.beyond.IsZero() {
		t.Errorf("read deadline set %v after the linger began, input coming all along; want at most %v (%d Lingers)",
			f.beyond.Sub(f.first), f.bound, maxLingerRounds)
	}
}

// A lingering close moves its read deadline coarsely, as the timeout
// watcher does: not at every read of a client that keeps sending, even
// once the deadline is held at the bound (there, it was: the deadline,
// an eighth of a Linger short of a Linger away, was set again, to the
// bound, at each read).
func TestLingerMovesItsDeadlineCoarsely(t *testing.T) {
	f := lingerOnFeed(t)
	// Each set comes more than an eighth of a Linger after the one
	// before: 8 a Linger at most (with room).
	if most := 10 * maxLingerRounds; f.sets > most {
		t.Errorf("read deadline set %d times in %d Lingers; want %d at most (once an eighth of a Linger)", f.sets, maxLingerRounds, most)
	}
}

// waitReadable waits until input waits in sc, reading none.
func waitReadable(t *testing.T, sc *net.TCPConn) {
	t.Helper()
	rc, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	sc.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer sc.SetReadDeadline(time.Time{})
	var perr error
	if err := rc.Read(func(fd uintptr) bool {
		_, _, perr = unix.Recvfrom(int(fd), make([]byte, 1), unix.MSG_PEEK)
		return perr != unix.EAGAIN
	}); err != nil || perr != nil {
		t.Fatalf("waiting for input: %v, %v", err, perr)
	}
}

// silentConn is a client that sends nothing: a read waits for its read
// deadline, as a socket's does, and fails with it. It counts the reads,
// and ends (end of file) after 10 s.
type silentConn struct {
	net.Conn
	start    time.Time
	deadline time.Time
	reads    int
}

func (s *silentConn) SetReadDeadline(t time.Time) error {
	s.deadline = t
	return nil
}

func (s *silentConn) Read([]byte) (int, error) {
	s.reads++
	if time.Since(s.start) > 10*time.Second {
		return 0, io.EOF
	}
	time.Sleep(time.Until(s.deadline)) // (none if it passed)
	return 0, os.ErrDeadlineExceeded
}

// queuedPair is lingerPair's server side, with replies queued that the
// client does not read (the send queue full), and its raw connection.
func queuedPair(t *testing.T) (*net.TCPConn, syscall.RawConn) {
	t.Helper()
	sc, cc := lingerPair(t)
	cc.SetReadBuffer(4 << 10)
	sc.SetWriteBuffer(4 << 10)
	raw, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	sc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	for range 1024 { // 64 MiB at most; full long before
		if _, err := sc.Write(make([]byte, 64<<10)); err != nil {
			break
		}
	}
	return sc, raw
}

// A lingering close whose replies are still queued, to a client that is
// not stuck yet (WriteTimeout is long), looks at them again a lingerEvery
// later, not at once: it waits, and reads no more than once a lingerEvery.
func TestLingerAtQueuedRepliesWaits(t *testing.T) {
	sc, raw := queuedPair(t)
	const linger = 20 * time.Millisecond
	s := &silentConn{Conn: sc, start: time.Now()}
	c := &conn{srv: &Server{Linger: linger, WriteTimeout: time.Hour, Logger: slog.New(slog.DiscardHandler)}, accepted: sc, c: s, raw: raw}
	if c.unsent() == 0 {
		t.Fatal("no reply queued")
	}
	c.linger()
	every := lingerEvery(linger)
	if most := int(lingerBound(linger)/every) + 2; s.reads > most {
		t.Errorf("the linger read %d times over %d Lingers at most, its replies queued; want %d at most (once %v)",
			s.reads, maxLingerRounds, most, every)
	}
}

// lookConn is a client that sends nothing, as silentConn, and takes no
// reply. Of each read deadline set after a read, it keeps how far past
// the time it was set it lies, the longest of those, and ends (closed,
// not an end of file, after which the replies still queued would be
// waited for: see lingerQueued) at its read after the most'th.
type lookConn struct {
	net.Conn
	deadline    time.Time
	reads, most int
	sets        int
	longest     time.Duration
}

func (l *lookConn) SetReadDeadline(t time.Time) error {
	if l.deadline = t; l.reads > 0 {
		l.sets++
		l.longest = max(l.longest, time.Until(t))
	}
	return nil
}

func (l *lookConn) Read([]byte) (int, error) {
	if l.reads++; l.reads > l.most {
		return 0, net.ErrClosed
	}
	time.Sleep(time.Until(l.deadline)) // (none if it passed)
	return 0, os.ErrDeadlineExceeded
}

// A lingering close whose replies stay queued, its client's input quiet,
// looks at them again every lingerEvery, as the event loops' sweeps do:
// each read deadline set after a look lies at most that far from when it
// was set (a stall before it was set only brings it nearer). It looked a
// whole Linger later instead, so it closed up to a Linger after the
// client had taken every reply, and up to two after it stopped taking
// any, where the loops closed within a sweep.
func TestLingerLooksAtQueuedRepliesAsTheLoopsDo(t *testing.T) {
	sc, raw := queuedPair(t)
	const linger = 80 * time.Millisecond
	l := &lookConn{Conn: sc, most: 8}
	c := &conn{srv: &Server{Linger: linger, WriteTimeout: time.Hour, Logger: slog.New(slog.DiscardHandler)}, accepted: sc, c: l, raw: raw}
	if c.unsent() == 0 {
		t.Fatal("no reply queued")
	}
	c.linger()
	if l.sets == 0 {
		t.Fatal("no read deadline set after a look")
	}
	if every := lingerEvery(linger); l.longest > every {
		t.Errorf("read deadline set %v ahead after a look at queued replies; want %v at most (lingerEvery, the loops' sweep; Linger %v)",
			l.longest, every, linger)
	}
}

// lingerEvery is an eighth of Linger, within 5 ms and 1 s.
func TestLingerEvery(t *testing.T) {
	for _, tc := range []struct{ linger, want time.Duration }{
		{time.Millisecond, 5 * time.Millisecond},
		{40 * time.Millisecond, 5 * time.Millisecond},
		{80 * time.Millisecond, 10 * time.Millisecond},
		{2 * time.Second, 250 * time.Millisecond},
		{time.Hour, time.Second},
	} {
		if got := lingerEvery(tc.linger); got != tc.want {
			t.Errorf("lingerEvery(%v) = %v; want %v", tc.linger, got, tc.want)
		}
	}
}
