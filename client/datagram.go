package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"shout/internal/sockerr"
)

// MaxDatagram is the largest UDP payload over IPv4, and MaxDatagram6
// over IPv6, whose header is not counted in the 65,535 bytes a datagram
// may carry (without jumbograms).
const (
	MaxDatagram  = 65507
	MaxDatagram6 = 65527
)

// MaxPayload is the longest line Datagrams sends to addr in one datagram:
// MaxDatagram6 to an IPv6 address, MaxDatagram to any other (an
// IPv4-mapped address is reached over IPv4).
func MaxPayload(addr net.Addr) int {
	if a, ok := addr.(*net.UDPAddr); ok && len(a.IP) == net.IPv6len && a.IP.To4() == nil {
		return MaxDatagram6
	}
	return MaxDatagram
}

// defaultTimeout is the wait for a reply when none is given.
const defaultTimeout = 2 * time.Second

// MaxRetries is the most retries Datagrams makes for a line: at the
// default timeout, more than three weeks of asking.
const MaxRetries = 1_000_000

// DatagramResult counts what Datagrams did.
type DatagramResult struct {
	// Sent counts the lines sent, each Answered or Lost; Retries, the
	// times they were sent again after a wait for their reply timed out.
	// A line refused at one of a name's addresses and too long for the
	// next is not sent after all: in neither, its retries at the first
	// with it.
	Sent, Answered, Lost, Retries int
	// TooLong counts the lines longer than a datagram carries: reported
	// and not sent (not in Sent).
	TooLong int
	// TooLong6 counts those of TooLong that were for an IPv6 address,
	// longer than MaxDatagram6; the others were for an IPv4 one, longer
	// than MaxDatagram. (Over a name, lines may go to both: see Dial.)
	TooLong6 int
}

// Problem describes, in one line, the lines lost and not sent; it is ""
// if there were none.
func (r DatagramResult) Problem() string {
	var problems []string
	if r.Lost > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d lines got no reply", r.Lost, r.Sent))
	}
	lines := func(n int) string {
		if n == 1 {
			return "1 line"
		}
		return fmt.Sprintf("%d lines", n)
	}
	// Each limit as the line's warning named it: IPv4's is less.
	switch too4 := r.TooLong - r.TooLong6; {
	case r.TooLong6 > 0 && too4 > 0:
		problems = append(problems, fmt.Sprintf("%s not sent: %d longer than %d bytes (IPv6), %d longer than %d bytes (IPv4)", lines(r.TooLong), r.TooLong6, MaxDatagram6, too4, MaxDatagram))
	case r.TooLong6 > 0:
		problems = append(problems, fmt.Sprintf("%s longer than %d bytes not sent", lines(r.TooLong6), MaxDatagram6))
	case too4 > 0:
		problems = append(problems, fmt.Sprintf("%s longer than %d bytes not sent", lines(too4), MaxDatagram))
	}
	return strings.Join(problems, "; ")
}

// Datagrams sends each non-blank line of in as one datagram, without its
// newline, as the lesson's UDP client does, and writes each reply to out
// on a line of its own. The first line goes on c, each later one on a
// new socket from dial, so that a reply that comes late, or twice,
// cannot be taken for the next line's. A reply that does not come within
// timeout is asked for again, up to retries more times; then the line is
// reported to warn as lost (naming where its tries went, if some went to
// an address of a name that then refused it), and so is a line the
// server's host refused (an ICMP port unreachable), and the next one is
// sent. A line longer
// than MaxPayload of the address it goes to (c's, or the one a name's
// lines go to; see Dial) is reported to warn, not sent, and the next one
// is read. A reply to a lost line that comes later is
// reported to warn as late. A line is sent retries+1 times at most
// without a reply, wherever they go (a try refused at one of a name's
// addresses, which its refusal ended, is not counted), so it never waits
// longer than (retries+1)*timeout for a line, besides the moment a
// refusal takes to come back. A timeout of zero or less means 2 s,
// as Terminal's does; retries less than zero, none, and more than
// MaxRetries, MaxRetries.
func Datagrams(c net.Conn, dial func() (net.Conn, error), in io.Reader, out, warn io.Writer, timeout time.Duration, retries int) (DatagramResult, error) {
	// A wait of nothing would lose every line at once, and fewer than no
	// retries would send none of them.
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	retries = min(max(retries, 0), MaxRetries) // (retries+1 tries: it must not wrap)
	// limit is the most a line carries to where it goes: c's address,
	// then the one the last line went to (or, refused, could not go
	// on to), which later lines' sockets are dialled to first (see Dial);
	// after a line refused at every address, the one it went to first.
	limit := MaxPayload(c.RemoteAddr())
	var res DatagramResult
	tooLong := func(lineNo, most int) {
		res.TooLong++
		if most == MaxDatagram6 {
			res.TooLong6++
		}
		fmt.Fprintf(warn, "shout: line %d: %v\n", lineNo, tooLongError(most))
	}
	// Room for the longest line and "\r\n": a line that does not fit
	// is too long for any datagram, and is skipped to its end.
	br := bufio.NewReaderSize(in, MaxDatagram6+2)
	reply := make([]byte, 1<<17)
	late := newLateWatch(warn)
	defer late.close()
	next := c
	defer func() {
		if next != nil && next != c { // dialled for a line that was not sent
			next.Close()
		}
	}()
	for lineNo := 1; ; lineNo++ {
		line, long, rerr := readLine(br)
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			late.report()
			return res, stdioError("read input", rerr)
		}
		if errors.Is(rerr, io.EOF) && len(line) == 0 && !long {
			break
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if long || len(line) > limit {
			// One line that cannot be sent is that line's failure, as a
			// lost one is, not the end of the run.
			late.report()
			tooLong(lineNo, limit)
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		late.report()
		sock := next
		next = nil
		if sock == nil {
			var err error
			if sock, err = dial(); err != nil {
				return res, err
			}
		}
		if most := MaxPayload(sock.RemoteAddr()); len(line) > most {
			// The address of a name taken after a refusal at c's (see
			// Dial) may carry less: IPv4's most is less than IPv6's. Sent,
			// it failed, and ended the run. (The socket, unused, is the
			// next line's.)
			next = sock
			limit = most
			tooLong(lineNo, most)
			continue
		}
		res.Sent++
		dialled := sock.RemoteAddr() // (first again for the next line, if this one is refused at every address)
		left := retries
		n, tries, err := exchangeDatagram(sock, line, reply, timeout, left)
		retried := tries - 1
		// Refused at one of a name's addresses: nothing listens there, and
		// nothing was taken; the next may be the server's (see Dial). It
		// gets the tries the line has left: those before the refused one
		// waited their timeout, and a line's wait is bounded wherever its
		// tries go. over is the most of a next address that could not
		// carry the line, where later lines go first all the same. before
		// is where tries went unanswered before a refusal, for the line's
		// loss to name.
		over := 0
		var before []addrTries
		for err != nil && sockerr.Refused(err) {
			left -= tries - 1
			if tries > 1 {
				before = append(before, addrTries{sock.RemoteAddr(), tries - 1})
			}
			next := nextAddress(sock)
			if next == nil {
				break
			}
			if most := MaxPayload(next.RemoteAddr()); len(line) > most { // (IPv4's most is less than IPv6's)
				settled(next, nil) // (not refused: where later lines go)
				next.Close()
				over = most
				break
			}
			sock.Close()
			sock = next
			n, tries, err = exchangeDatagram(sock, line, reply, timeout, left)
			retried += tries - 1
		}
		settled(sock, err)
		switch {
		case over > 0:
			limit = over
		case err != nil && sockerr.Refused(err):
			limit = MaxPayload(dialled) // (refused everywhere: the order stays as it was)
		default:
			limit = MaxPayload(sock.RemoteAddr())
		}
		if over == 0 {
			res.Retries += retried // (a line not sent, out of Sent, has none)
		}
		switch {
		case over > 0:
			// Refused where nothing listens, and too long for where later
			// lines go: said so, as a later line that long is, not lost
			// (it was never sent there). (The socket refused is no line's.)
			sock.Close()
			res.Sent--
			tooLong(lineNo, over)
		case err != nil && sockerr.Refused(err):
			sock.Close()
			res.Lost++
			fmt.Fprintf(warn, "shout: line %d: %v: lost\n", lineNo, err)
		case err != nil:
			sock.Close()
			return res, err
		case n >= 0:
			sock.Close()
			res.Answered++
			if _, err := out.Write(ownLine(reply[:n])); err != nil {
				return res, stdioError("write output", err)
			}
		default:
			res.Lost++
			fmt.Fprintf(warn, "shout: line %d: no reply %s: lost\n", lineNo, noReplyWhere(before, addrTries{sock.RemoteAddr(), tries}, retries+1, timeout))
			late.watch(lineNo, sock)
		}
	}
	late.report()
	return res, nil
}

// addrTries is how many tries of a line went to an address unanswered.
type addrTries struct {
	addr  net.Addr
	tries int
}

// noReplyWhere says where a line's tries, n of timeout each, went
// unanswered: to last alone ("from 127.0.0.1:8080 after 3 tries of
// 2s"), or first to the addresses of before, each of which then refused
// it ("after 3 tries of 2s (1 to [::1]:8080, then refused; 2 to
// 127.0.0.1:8080)"): named at the last alone, the tries at the others
// were said to be its.
func noReplyWhere(before []addrTries, last addrTries, n int, timeout time.Duration) string {
	if len(before) == 0 {
		return fmt.Sprintf("from %s after %s of %v", last.addr, triesText(n), timeout)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "after %s of %v (", triesText(n), timeout)
	for _, a := range before {
		fmt.Fprintf(&b, "%d to %s, then refused; ", a.tries, a.addr)
	}
	fmt.Fprintf(&b, "%d to %s)", last.tries, last.addr)
	return b.String()
}

// tooLongError is a line longer than the most, its value, one datagram
// to where it goes carries: it is not sent.
type tooLongError int

func (e tooLongError) Error() string {
	return fmt.Sprintf("longer than %d bytes, the most one datagram carries: not sent", int(e))
}

// triesText is n tries, said: "1 try", "2 tries".
func triesText(n int) string {
	if n == 1 {
		return "1 try"
	}
	return fmt.Sprintf("%d tries", n)
}

// ownLine is a reply datagram as printed on a line of its own: with a
// newline after it, unless it ends in one (a server that ends each reply
// with a newline), which a second would follow with an empty line.
func ownLine(p []byte) []byte {
	if len(p) > 0 && p[len(p)-1] == '\n' {
		return p
	}
	return append(p, '\n')
}

// readLine reads br's next line, without its newline; err is io.EOF
// after the last. A line that does not fit br's buffer is read to its
// end and dropped: long reports it, and line is empty.
func readLine(br *bufio.Reader) (line []byte, long bool, err error) {
	line, err = br.ReadSlice('\n')
	for errors.Is(err, bufio.ErrBufferFull) {
		long, line = true, nil
		_, err = br.ReadSlice('\n')
	}
	return bytes.TrimSuffix(line, []byte{'\n'}), long, err
}

// lateWatch listens on the sockets of the last lines lost for a reply
// that comes after all.
type lateWatch struct {
	warn  io.Writer
	socks []net.Conn
	late  chan string
	taken chan<- struct{} // see lateTaken
}

// lateTaken, set by a test, is told each time a late reply is taken from
// a watched socket, ready for the next report: a test that waits for it
// knows the next line reports it. (The goroutine that takes it may wait
// for a CPU while many lines go by.)
var lateTaken chan<- struct{}

func newLateWatch(warn io.Writer) *lateWatch {
	return &lateWatch{warn: warn, late: make(chan string, keepLost+1), taken: lateTaken}
}

// watch keeps c, line n's socket, open for a late reply; the oldest one
// watched is closed when there are more than keepLost.
func (w *lateWatch) watch(n int, c net.Conn) {
	w.socks = append(w.socks, c)
	if len(w.socks) > keepLost {
		w.socks[0].Close()
		w.socks = w.socks[1:]
	}
	c.SetReadDeadline(time.Time{}) // its last wait's has passed: no read would wait
	go func() {
		buf := make([]byte, 1<<17)
		k, err := c.Read(buf)
		if err != nil {
			return
		}
		msg := fmt.Sprintf("shout: late reply to line %d: %s", n, ownLine(new(visible).append(nil, buf[:k], true)))
		select {
		case w.late <- msg:
		default:
		}
		if w.taken != nil {
			w.taken <- struct{}{}
		}
	}()
}

// report writes the late replies that came so far.
func (w *lateWatch) report() {
	for {
		select {
		case msg := <-w.late:
			io.WriteString(w.warn, msg)
		default:
			return
		}
	}
}

func (w *lateWatch) close() {
	for _, c := range w.socks {
		c.Close()
	}
}

// exchangeDatagram sends msg and waits timeout for a reply into buf,
// sending again up to retries times. It returns the reply's length, or -1
// if none came, and how many times it sent.
func exchangeDatagram(c net.Conn, msg, buf []byte, timeout time.Duration, retries int) (n, tries int, err error) {
	addr := c.RemoteAddr().String()
	for tries = 1; tries <= retries+1; tries++ {
		if _, err := c.Write(msg); err != nil {
			return -1, tries, wrap("send", addr, err)
		}
		setReplyDeadline(c, timeout)
		n, err := readReply(c, buf)
		if err == nil {
			return n, tries, nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return -1, tries, wrap("receive", addr, err)
		}
	}
	return -1, tries - 1, nil
}

// setReplyDeadline sets c's read deadline timeout from now; a traced c
// names the wait timeout, as the user gave it.
func setReplyDeadline(c net.Conn, timeout time.Duration) {
	if t, ok := c.(*tracedConn); ok {
		t.setReplyDeadline(timeout)
		return
	}
	c.SetReadDeadline(time.Now().Add(timeout))
}

// replyTimeouts, set by a test, ends a wait for a reply at once, as its
// deadline would (or, at the prompt, its timer), each time the test sends on it: the test, which knows
// when no reply will come (it dropped the datagram), is the clock. By
// the real clock a reply that came was taken for none, on a busy machine
// that left the test without CPU past a short timeout, and a test that
// counts retries counted one more.
var replyTimeouts <-chan struct{}

// readReply reads c's reply into buf, in a wait that its read deadline
// ends, or a test's replyTimeouts.
func readReply(c net.Conn, buf []byte) (int, error) {
	timeouts := replyTimeouts
	if timeouts == nil {
		return c.Read(buf)
	}
	read, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		select {
		case <-timeouts:
			c.SetReadDeadline(time.Unix(1, 0))
		case <-read:
		}
	}()
	n, err := c.Read(buf)
	close(read)
	<-ended // (a send after this wait's end is the next one's)
	return n, err
}
