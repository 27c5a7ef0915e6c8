package client

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"shout/internal/escape"
	"shout/internal/sockerr"
	"shout/internal/sockfd"
)

// TracePrefix begins every line Trace writes: the prefix of shout serve
// --trace's lines (server.TracePrefix), so that no trace line can be taken
// for the client's own output or messages.
const TracePrefix = "trace "

// traceData is how much of each send and receive a trace line shows.
const traceData = 64

// Trace returns c with every socket call on it written to w as it
// happens, one line each, as shout serve --trace writes the server's:
// "trace fd=5 send(6) → 6 bytes "hello\n"". Over a stream: the connect,
// each send and receive with its size and bytes (escaped, cut at 64), the
// half-close and the close; over UDP, each sendto and recvfrom, a wait
// for a reply that timed out, and the retry that follows. It writes the
// connect line at once. Each line is one Write to w, under a lock.
func Trace(c net.Conn, w io.Writer) net.Conn {
	t := &tracedConn{Conn: c, w: w, fd: connFD(c)}
	t.udp = c.LocalAddr().Network() == "udp"
	if t.udp {
		t.line("connect(%s) from %s: UDP's connect sends nothing; it fixes where each sendto goes and whose datagrams recvfrom takes", c.RemoteAddr(), c.LocalAddr())
	} else if ua, unix := c.LocalAddr().(*net.UnixAddr); unix {
		from := "a socket without a name"
		if ua != nil && ua.Name != "" && ua.Name != "@" { // "@": none (Linux)
			from = ua.Name
		}
		t.line("connect(%s) → connected from %s: the kernel made the connection; it waits in the server's backlog until accept() takes it", c.RemoteAddr(), from)
	} else {
		t.line("connect(%s) → connected from %s: the kernel picked the port and made the connection; it waits in the server's backlog until accept() takes it", c.RemoteAddr(), c.LocalAddr())
	}
	return t
}

// isDatagram reports whether c is a UDP connection, traced or not.
func isDatagram(c net.Conn) bool {
	switch c := c.(type) {
	case *tracedConn:
		return c.udp
	case *net.UDPConn, *udpNameConn:
		return true
	}
	return false
}

type tracedConn struct {
	net.Conn
	mu  sync.Mutex
	w   io.Writer
	fd  int
	udp bool

	// Over UDP: the wait the last deadline set, and how many times the
	// datagram under way has been sent again after a wait timed out.
	wait      time.Duration
	timedOut  bool
	retries   int
	sentBytes int
}

func (t *tracedConn) line(format string, a ...any) {
	b := make([]byte, 0, 256)
	b = append(b, TracePrefix...)
	b = fmt.Appendf(b, "fd=%s ", fdString(t.fd))
	// Escaped whole: an address (a Unix socket's name) or an error's
	// text may hold ESC or a newline; the data, quoted, reads as it was.
	b = append(b, escape.Printable(fmt.Sprintf(format, a...))...)
	b = append(b, '\n')
	t.mu.Lock()
	defer t.mu.Unlock()
	t.w.Write(b)
}

func (t *tracedConn) SetReadDeadline(d time.Time) error {
	t.mu.Lock()
	// A deadline already past wakes a reader (a test's timeout,
	// SetReplyTimeouts, ends a wait so): it is no wait.
	if wait := time.Until(d); !d.IsZero() && wait > 0 {
		t.wait = wait.Round(time.Millisecond)
	}
	t.mu.Unlock()
	return t.Conn.SetReadDeadline(d)
}

// setReplyDeadline sets the read deadline timeout from now, and names
// the wait timeout itself, the user's --timeout. Worked out from the
// deadline, as SetReadDeadline must, it was the time left when it was
// set, rounded: "no reply within 499ms" of --timeout 500ms when the
// client was delayed half a millisecond before setting it.
func (t *tracedConn) setReplyDeadline(timeout time.Duration) error {
	t.mu.Lock()
	t.wait = timeout
	t.mu.Unlock()
	return t.Conn.SetReadDeadline(time.Now().Add(timeout))
}

// Write traces the send before making it, so that its line comes
// before the lines of the reply it causes; a failure gets a line of its
// own.
func (t *tracedConn) Write(p []byte) (int, error) {
	call := "send"
	if t.udp {
		call = "sendto(" + t.RemoteAddr().String() + ", " + strconv.Itoa(len(p)) + ")"
		t.mu.Lock()
		if t.timedOut && len(p) == t.sentBytes {
			t.retries++
			call += " again, retry " + strconv.Itoa(t.retries)
		} else {
			t.retries = 0
		}
		t.timedOut, t.sentBytes = false, len(p)
		t.mu.Unlock()
	} else {
		call += "(" + strconv.Itoa(len(p)) + ")"
	}
	t.line("%s %s", call, quoted(p))
	n, err := t.Conn.Write(p)
	if err != nil {
		t.line("%s → %s after %s", call, sendError(err), bytesWord(n))
	}
	return n, err
}

func (t *tracedConn) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	call := "recv"
	if t.udp {
		call = "recvfrom"
	}
	call += "(" + strconv.Itoa(len(p)) + ")"
	switch {
	case n > 0:
		t.line("%s → %s %s", call, bytesWord(n), quoted(p[:n]))
	case t.udp && err == nil:
		t.line("%s → 0 bytes: an empty datagram", call)
	case errors.Is(err, os.ErrDeadlineExceeded):
		// A stream's reader is woken by deadlines that are none of
		// the user's business; a datagram's wait is the lesson's timeout.
		if t.udp {
			t.mu.Lock()
			t.timedOut = true
			wait := t.wait
			t.mu.Unlock()
			t.line("%s → no reply within %v: timed out; UDP does not resend, so shout does", call, wait)
		}
	case errors.Is(err, net.ErrClosed):
		// This side closed it: the close has its own line.
	case errors.Is(err, io.EOF):
		t.line("%s → 0 bytes: end of file: the server closed its side", call)
	case err != nil:
		t.line("%s → %s", call, sendError(err))
	}
	return n, err
}

// CloseWrite shuts the connection's write side, if it has one.
func (t *tracedConn) CloseWrite() error {
	cw, ok := t.Conn.(interface{ CloseWrite() error })
	if !ok {
		return errors.New("client: no half-close on " + t.LocalAddr().Network())
	}
	// Traced before the call, as send is: the server's end of file, which
	// the half-close causes, is traced by the reader and must come after.
	t.line("shutdown(SHUT_WR): half-close: the server reads end of file; its replies can still come")
	err := cw.CloseWrite()
	if err != nil {
		t.line("shutdown(SHUT_WR) → %v", err)
	}
	return err
}

func (t *tracedConn) Close() error {
	err := t.Conn.Close()
	if !errors.Is(err, net.ErrClosed) {
		t.line("close()")
	}
	return err
}

func sendError(err error) string {
	switch {
	case sockerr.Refused(err):
		return "connection refused: nothing listens there (over UDP, an ICMP message said so)"
	case sockerr.Reset(err):
		return "connection reset (RST) by the server"
	case sockerr.BrokenPipe(err):
		return "broken pipe (EPIPE): the server closed the connection"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	}
	return "error: " + Cause(err)
}

func bytesWord(n int) string {
	if n == 1 {
		return "1 byte"
	}
	return strconv.Itoa(n) + " bytes"
}

// quoted is p escaped as the server's trace escapes it (server.Escape:
// Go's quoting, which nothing a server sends can turn into a terminal
// command), in double quotes, cut at traceData bytes.
func quoted(p []byte) string {
	cut := len(p)
	if cut > traceData {
		cut = traceData
		for cut > traceData-3 && p[cut]&0xc0 == 0x80 {
			cut--
		}
	}
	s := strconv.Quote(string(p[:cut]))
	if cut < len(p) {
		s += fmt.Sprintf("… (%d more)", len(p)-cut)
	}
	return s
}

func fdString(fd int) string {
	if fd < 0 {
		return "?"
	}
	return strconv.Itoa(fd)
}

// connFD is c's file descriptor, or -1. A TLS connection's is its
// socket's.
func connFD(c net.Conn) int {
	for {
		nc, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = nc.NetConn()
	}
	fd := -1
	sockfd.Control(c, func(f int) { fd = f })
	return fd
}
