package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"shout/internal/escape"
	"shout/internal/named"
	"shout/internal/sockerr"
)

// TracePrefix begins every line a trace observer writes, so that none can
// be taken for a log line (text logs begin with "time=", JSON ones with
// "{").
const TracePrefix = "trace "

// traceData is how much of what a client sent a trace line shows.
const traceData = 64

// NewTraceObserver returns the SocketTracer behind shout serve --trace: it
// writes to w one line per socket call, in the lesson's terms (socket,
// setsockopt, bind, listen, accept, recv, send, shutdown, close,
// recvfrom, sendto), each starting with TracePrefix and the file
// descriptor, with the byte counts and the bytes (escaped as Escape does,
// cut at 64), and a few plain words where the stream lesson shows: two
// lines in one read, a line or a character split across reads, an end of
// file, a reset.
//
// Each line is written at once with one Write call, under a lock, so
// lines never interleave and none waits in a buffer; but a w that blocks
// holds up serving. It is for watching a server, not for production.
// It logs nothing else: combine it with the log with Observers.
//
// A limit it reports (a rejection's, an over-budget drop's) is named by
// the Server field that sets it, MaxConns, MaxConnsPerIP or SourceRate;
// NewNamedTraceObserver names it as a program's user knows it.
func NewTraceObserver(w io.Writer) Observer { return &tracer{w: w} }

// NewNamedTraceObserver is NewTraceObserver whose lines name a limit as
// limitName(field) does, field being the Server field that sets it: shout
// serve names the flag (--max-conns), which its user knows, not the field.
func NewNamedTraceObserver(w io.Writer, limitName func(field string) string) Observer {
	return &tracer{w: w, limitName: limitName}
}

type tracer struct {
	mu        sync.Mutex
	w         io.Writer
	limitName func(field string) string // nil: the field's own name
}

// limit is how the trace names the limit that Server field sets.
func (t *tracer) limit(field string) string {
	if t.limitName == nil {
		return field
	}
	return t.limitName(field)
}

var _ SocketTracer = (*tracer)(nil)

func (*tracer) ConnOpen(*ConnInfo)         {}
func (*tracer) ConnRead(*ConnInfo, []byte) {}
func (*tracer) ConnClose(*ConnInfo)        {}
func (*tracer) Datagram(*DatagramInfo)     {}

// write writes lines, each already prefixed, in one call.
func (t *tracer) write(b []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.w.Write(b)
}

// line is one trace line being built.
type line struct{ b []byte }

func newLine(fd int) *line {
	l := &line{b: make([]byte, 0, 256)}
	l.b = append(l.b, TracePrefix...)
	l.b = append(l.b, "fd="...)
	if fd < 0 {
		l.b = append(l.b, '?')
	} else {
		l.b = strconv.AppendInt(l.b, int64(fd), 10)
	}
	l.b = append(l.b, ' ')
	return l
}

func (l *line) f(format string, a ...any) *line {
	l.b = fmt.Appendf(l.b, format, a...)
	return l
}

// notes adds remarks after a colon, separated by "; ".
func (l *line) notes(notes []string) *line {
	if len(notes) > 0 {
		l.b = append(l.b, ": "...)
		l.b = append(l.b, strings.Join(notes, "; ")...)
	}
	return l
}

func (l *line) end() []byte { return append(l.b, '\n') }

// quoted is p for a trace line: escaped, in double quotes, cut at
// traceData bytes (at the start of a character) with the rest counted.
func quoted(p []byte) string {
	cut := charCut(p, traceData)
	s := `"` + Escape(p[:cut]) + `"`
	if cut < len(p) {
		s += fmt.Sprintf("… (%d more)", len(p)-cut)
	}
	return s
}

func bytesWord(n int) string {
	if n == 1 {
		return "1 byte"
	}
	return strconv.Itoa(n) + " bytes"
}

func (t *tracer) TraceListener(l net.Listener) {
	fd := sockFD(l)
	family, typ, reuse := sockFacts(fd)
	var b []byte
	b = append(b, newLine(fd).f("socket(%s, %s) → fd %s: the %s socket to listen on", family, typ, fdString(fd), l.Addr().Network()).end()...)
	if reuse {
		why := "a restart can bind this address at once, while old connections wait out TIME_WAIT"
		if l.Addr().Network() == "unix" {
			// Go sets it on a Unix listener too, where the TCP reason
			// would teach what is not so.
			why = "Go sets it on every listener, but here it does nothing: a Unix socket has no TIME_WAIT, and what keeps a restart from binding is a socket file left behind (closing the listener removes it)"
		}
		b = append(b, newLine(fd).f("setsockopt(SOL_SOCKET, SO_REUSEADDR, 1): %s", why).end()...)
	}
	// (Escaped: a Unix socket's name may hold ESC or a newline. It is
	// the user's, not a client's: a name in any script reads as it is.)
	b = append(b, newLine(fd).f("bind(%s)", escape.Printable(l.Addr().String())).end()...)
	if n, where := somaxconn(); n > 0 {
		b = append(b, newLine(fd).f("listen(%d): up to %d connections wait for accept() (the backlog: %s, which Go passes; the lesson asks for 5)", n, n, where).end()...)
	} else {
		b = append(b, newLine(fd).f("listen()").end()...)
	}
	t.write(b)
}

func fdString(fd int) string {
	if fd < 0 {
		return "?"
	}
	return strconv.Itoa(fd)
}

func (t *tracer) TraceConn(l net.Listener, nc net.Conn) ConnTrace {
	ct := &connTrace{t: t, fd: sockFD(nc)}
	ra := nc.RemoteAddr()
	client := "client " + addrText(ra)
	switch {
	case ra == nil: // a net.Conn of the caller's that has none
		client = "a client without an address"
	case ra.String() == "" || ra.String() == "@":
		client = "a client without an address (a Unix socket's)"
	}
	t.write(newLine(sockFD(l)).f("accept() → fd %s, %s: a new socket for this client; fd %s goes on listening",
		fdString(ct.fd), client, fdString(sockFD(l))).end())
	return ct
}

// connTrace follows one connection, from its own goroutine, and keeps
// what it needs to say when a line or a character spans reads.
type connTrace struct {
	t         *tracer
	fd        int
	midLine   bool // the last read ended inside a line
	lineReads int  // reads the line under way has spanned so far
	partial   []byte
}

func (c *connTrace) Read(size int, p []byte, err error) {
	l := newLine(c.fd).f("recv(%d) → ", size)
	if err != nil && len(p) == 0 {
		c.t.write(l.f("%s", readError(err)).end())
		return
	}
	l.f("%s %s", bytesWord(len(p)), quoted(p))
	l.notes(c.stream(size, p))
	if err != nil {
		l.f(", then %s", readError(err))
	}
	c.t.write(l.end())
}

// stream says what the read p shows of TCP's byte stream, and updates
// what the connection remembers of lines and characters.
func (c *connTrace) stream(size int, p []byte) []string {
	var notes []string
	// A character begun in the read before.
	if len(c.partial) > 0 {
		joined := append(c.partial[:len(c.partial):len(c.partial)], p[:min(len(p), utf8.UTFMax)]...)
		if need := runeLen(c.partial[0]); len(joined) >= need {
			r, _ := utf8.DecodeRune(joined)
			first := "its first byte completes"
			if k := need - len(c.partial); k > 1 {
				first = fmt.Sprintf("its first %d bytes complete", k)
			}
			notes = append(notes, fmt.Sprintf("%s %q, the character split across reads", first, r))
		}
	}
	lines := bytes.Count(p, []byte{'\n'})
	rest := len(p) - (bytes.LastIndexByte(p, '\n') + 1) // after the last line end
	switch {
	case lines >= 2 && rest > 0:
		notes = append(notes, fmt.Sprintf("%d lines and the start of another in one read: TCP is a byte stream, not messages", lines))
	case lines >= 2:
		notes = append(notes, fmt.Sprintf("%d lines in one read: TCP is a byte stream, not messages", lines))
	case lines == 1 && rest > 0 && !c.midLine:
		notes = append(notes, "a line and the start of the next in one read: TCP is a byte stream, not messages")
	}
	if lines >= 1 && c.midLine {
		if lines == 1 {
			notes = append(notes, fmt.Sprintf("the end of a line begun in an earlier read: one line over %d reads: TCP is a byte stream, not messages", c.lineReads+1))
		} else {
			notes = append(notes, "the first ends a line begun in an earlier read")
		}
	}
	// A character this read ends inside of.
	joined := append(c.partial[:len(c.partial):len(c.partial)], p...)
	c.partial = c.partial[:0]
	for i := len(joined) - 1; i >= max(0, len(joined)-utf8.UTFMax+1); i-- {
		if b := joined[i]; b < utf8.RuneSelf {
			break
		} else if b >= 0xc0 {
			if need := runeLen(b); need > len(joined)-i {
				c.partial = append(c.partial, joined[i:]...)
				notes = append(notes, fmt.Sprintf("ends inside a character, %d of its %d bytes: a character split across reads", len(joined)-i, need))
			}
			break
		}
	}
	if len(p) == size {
		notes = append(notes, "the buffer is full: what did not fit waits in the kernel for the next recv")
	}
	if lines > 0 {
		c.lineReads = 0
	}
	if rest > 0 {
		c.lineReads++
	}
	c.midLine = rest > 0
	return notes
}

// runeLen is how many bytes the UTF-8 sequence that b begins has, or 1.
func runeLen(b byte) int {
	switch {
	case b >= 0xf0 && b < 0xf8:
		return 4
	case b >= 0xe0:
		return 3
	case b >= 0xc0:
		return 2
	}
	return 1
}

// readError says what a failed read means.
func readError(err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return "0 bytes: end of file: the client will send no more (it closed, or half-closed with shutdown(SHUT_WR))"
	case sockerr.Reset(err):
		return "connection reset (RST): the client's side was torn down (killed or closed with data unread), not closed in order"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "woken by a deadline: idle timeout, or the server is stopping"
	case errors.Is(err, net.ErrClosed):
		return "the socket was closed: the server is stopping"
	}
	return "error: " + err.Error()
}

func (c *connTrace) Held(p []byte) {
	l := newLine(c.fd).f("holds back %s %s: ", bytesWord(len(p)), quoted(p))
	// The last character held: cut short, or whole and held to see what
	// follows it (--lang el looks ahead for accents).
	start := len(p) - 1
	for start > 0 && !utf8.RuneStart(p[start]) {
		start--
	}
	if need := runeLen(p[start]) - (len(p) - start); need > 0 {
		what := "its last byte"
		if need > 1 {
			what = fmt.Sprintf("its last %d bytes", need)
		}
		l.f("a character split across reads: waiting for %s", what)
	} else {
		l.f("the mapping looks ahead: the last letter waits for the next character, which may change its uppercase")
	}
	c.t.write(l.end())
}

func (c *connTrace) Write(p []byte, n int, err error) {
	l := newLine(c.fd).f("send(%d) → %s %s", len(p), bytesWord(n), quoted(p[:n]))
	if err != nil {
		l.f(", then %s", writeError(err))
	}
	c.t.write(l.end())
}

func writeError(err error) string {
	switch {
	case sockerr.BrokenPipe(err):
		return "broken pipe (EPIPE): the client is gone"
	case sockerr.Reset(err):
		return "connection reset (RST): the client is gone"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out: the client takes no replies"
	}
	return "error: " + err.Error()
}

func (c *connTrace) CloseWrite(err error) {
	l := newLine(c.fd).f("shutdown(SHUT_WR): half-close: the client reads end of file after the last reply; reading on until its own end of file, so that close() sends no reset")
	if err != nil {
		l = newLine(c.fd).f("shutdown(SHUT_WR) → %s", err)
	}
	c.t.write(l.end())
}

func (c *connTrace) Discard(n int, err error) {
	l := newLine(c.fd)
	switch {
	case n > 0:
		l.f("recv → %s, discarded: the connection is closing", bytesWord(n))
	case errors.Is(err, io.EOF):
		l.f("recv → 0 bytes: end of file: the client is done too")
	default:
		l.f("recv → %s", readError(err))
	}
	c.t.write(l.end())
}

func (c *connTrace) Close(info *ConnInfo) {
	// To the millisecond, but below one as the log's close line says it:
	// a connection of 366µs was "in 0s".
	d := info.Duration()
	if d < time.Millisecond {
		d = d.Round(time.Microsecond)
	} else {
		d = d.Round(time.Millisecond)
	}
	c.t.write(newLine(c.fd).f("close(): %s; %d bytes in, %d out, in %v",
		c.t.closeWhy(info), info.BytesIn, info.BytesOut, d).end())
}

func (t *tracer) closeWhy(c *ConnInfo) string {
	switch c.Reason {
	case ReasonEOF:
		return "eof, the client said it was done and had every reply"
	case ReasonReset:
		return "reset by the client"
	case ReasonIdleTimeout:
		return "idle timeout, the client sent nothing for too long"
	case ReasonWriteTimeout:
		return "write timeout, the client took no replies for too long"
	case ReasonBrokenPipe:
		return "broken pipe, the client went away while a reply was sent"
	case ReasonShutdown:
		return "shutdown, the server is stopping"
	case ReasonRejected, ReasonWrap, ReasonError:
		return c.Reason.String() + ", " + named.Text(c.Err, t.limit)
	}
	return c.Reason.String()
}

func (t *tracer) TracePacket(pc net.PacketConn) PacketTrace {
	fd := sockFD(pc)
	family, typ, _ := sockFacts(fd)
	var b []byte
	b = append(b, newLine(fd).f("socket(%s, %s) → fd %s: a %s socket", family, typ, fdString(fd), pc.LocalAddr().Network()).end()...)
	b = append(b, newLine(fd).f("bind(%s): no listen, no accept: each recvfrom says who sent the datagram", escape.Printable(pc.LocalAddr().String())).end()...)
	t.write(b)
	return &packetTrace{t: t, fd: fd}
}

type packetTrace struct {
	t  *tracer
	fd int
}

// lessonRecvfrom is what the lesson's server asks recvfrom for.
const lessonRecvfrom = 1024

func remote(d *DatagramInfo) string {
	if d.Remote.IsValid() {
		return d.Remote.String()
	}
	return "?"
}

func (p *packetTrace) Recvfrom(d *DatagramInfo) {
	l := newLine(p.fd).f("recvfrom(%d) → %s from %s %s", maxDatagram, bytesWord(len(d.Data)), remote(d), quoted(d.Data))
	switch {
	case len(d.Data) == 0:
		l.f(": an empty datagram, a message all the same (over TCP, recv → 0 bytes is the end of file)")
	case len(d.Data) > lessonRecvfrom:
		l.f(": more than the lesson's recvfrom(1024) takes: it would get the first 1024 bytes, and the rest would be lost")
	}
	p.t.write(l.end())
}

func (p *packetTrace) Sendto(d *DatagramInfo, reply []byte) {
	from := remote(d)
	l := newLine(p.fd)
	switch d.Reason {
	case ReasonNone:
		l.f("sendto(%s, %d) → %s %s", from, len(reply), bytesWord(len(reply)), quoted(reply))
	case ReasonSendFailed, ReasonShutdown:
		l.f("sendto(%s, %d) → %s", from, len(reply), errText(d.Err))
	default:
		l.f("no sendto: %s", p.t.dropWhy(d.Reason))
	}
	p.t.write(l.end())
}

func (t *tracer) dropWhy(r Reason) string {
	switch r {
	case ReasonOwnAddress:
		return "own address, the datagram claims to come from this server: a reply would loop"
	case ReasonReflectorPort:
		return "reflector port, it comes from a port whose service answers datagrams: a reply would loop"
	case ReasonLoop:
		return "loop, the same as a reply sent there less than " + time.Duration(loopWindow).String() + " before: taken for that reply, bounced back"
	case ReasonBudget:
		return "over budget, its source spent its bytes for now (" + t.limit("SourceRate") + ")"
	case ReasonTooLarge:
		return "reply too large, the uppercase does not fit in one datagram"
	}
	return r.String()
}
