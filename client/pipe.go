package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"sync/atomic"
	"time"

	"shout/internal/sockerr"
)

// PipeResult is what Pipe saw.
type PipeResult struct {
	Sent, Received       int64 // bytes written to the connection, and read from it
	LinesSent, LinesBack int64 // newlines each way: in Sent's bytes, and in Received's (none in a TLSAlert)
	// InputLeft: the server stopped taking input before it all was sent.
	InputLeft bool
	// Closed: the server closed (or reset) the connection, Pipe did not.
	Closed bool
	// Silent: input done, the server sent nothing for the silence timeout.
	Silent bool
	// Stuck: input not done, the server took none of it and sent nothing
	// for the silence timeout: it stopped reading.
	Stuck bool
	// MidLine: what the server sent last does not end in a newline.
	MidLine bool
	// TLSAlert: all the server sent is one TLS alert record, as a TLS
	// server built on OpenSSL (Python's ssl, openssl s_server) sends on
	// fewer bytes of plain text than a record's header, and closes: it
	// speaks TLS. Not the input's own alert-shaped bytes echoed back.
	TLSAlert bool
}

// Complete reports whether everything was sent and every line answered.
// Silence after that (a server that keeps the connection open, input that
// does not end in a newline) is no failure; but a server that closed on
// input with nothing back, or with a TLS alert alone, did not answer it,
// newline or not (printf hi had no line to count, and passed).
func (r PipeResult) Complete() bool {
	return !r.InputLeft && r.LinesBack >= r.LinesSent && !r.closedUnanswered()
}

// closedUnanswered reports whether the server closed on input sent with
// nothing back but, at most, a TLS alert.
func (r PipeResult) closedUnanswered() bool {
	return r.Closed && r.Sent > 0 && (r.Received == 0 || r.TLSAlert)
}

// Problem describes, in one line, why a result is not Complete.
func (r PipeResult) Problem(addr string, silence time.Duration) string {
	unanswered := fmt.Sprintf("%d of %d lines unanswered", max(r.LinesSent-r.LinesBack, 0), r.LinesSent)
	switch {
	case r.Stuck:
		return fmt.Sprintf("%s stopped reading: it took no input and sent nothing for %v (%d bytes sent, %s)", addr, silence, r.Sent, unanswered)
	case r.InputLeft && r.Sent == 0: // (not "0 bytes sent, 0 of 0 lines unanswered")
		return fmt.Sprintf("%s closed the connection before any input was sent", addr)
	case r.InputLeft:
		return fmt.Sprintf("%s closed the connection before all input was sent (%d bytes sent, %s)", addr, r.Sent, unanswered)
	case r.Silent:
		return fmt.Sprintf("no reply from %s for %v; %s", addr, silence, unanswered)
	case r.Closed && r.LinesSent == 0: // (not "0 of 0 lines unanswered")
		return fmt.Sprintf("%s closed the connection with the input unanswered (%d bytes, no newline)", addr, r.Sent)
	case r.Closed:
		return fmt.Sprintf("%s closed the connection with %s", addr, unanswered)
	}
	return ""
}

// Tests' hooks: pipeInputDone runs once Pipe's sender has said input is
// done, pipeBetweenLooks between its reader's two looks at what the
// sender said, where a failure stored in between was missed.
var pipeInputDone, pipeBetweenLooks func()

// Pipe streams in to the stream connection c and what c sends back to
// out, at the same time, so that a large file flows at full speed. At the
// end of in it closes c's write side, and goes on reading to the server's
// end of file, as nc -N does: what a server sends besides one line for
// each line (a greeting, a line of its own) does not make the count of
// replies look complete while the last ones are still on their way. It
// returns once the server closes, or once it has been silent for silence
// (zero: wait for the server to close): with input done, sending nothing
// back (nor, where the socket tells, taking more of what was sent), which
// also ends the wait on a server that answers every line and never
// closes; before, also taking none of the input it is being sent.
// It closes c. The error is for failures to send, receive or write out;
// a server that closes early or stops reading is reported in the result.
func Pipe(c net.Conn, in io.Reader, out io.Writer, silence time.Duration) (PipeResult, error) {
	addr := c.RemoteAddr().String()
	var (
		sent, linesSent atomic.Int64
		inputDone       atomic.Bool
		inputLeft       atomic.Bool
		sendFailed      atomic.Bool // reading the input or sending failed: stop at once
		w               = stuckWatch{start: time.Now()}
	)
	if watchClock != nil {
		w.clock, w.ticks = watchClock()
	}
	if silence > 0 {
		// A server that reads nothing, once the socket's buffers are
		// full, blocks the sender; and the reader, which waits for
		// silence only once input is done, would wait for ever.
		stop := w.watch(c, silence)
		defer stop()
	}
	sendErr := make(chan error, 1)
	var sentHead []byte // the first bytes sent, enough for an alert: the sender's until it is done
	go func() {
		buf := make([]byte, 64<<10)
		var err error
		for {
			n, rerr := in.Read(buf)
			if n > 0 {
				var werr error
				// In pieces, so that a server reading slowly is seen to
				// read (progress), not taken for one that stopped.
				for off := 0; off < n && werr == nil; {
					var k int
					k, werr = w.send(c, buf[off:min(n, off+writePiece)])
					// Lines are counted as they go out, not as they are
					// read: what a failed write left unsent was never
					// the server's to answer.
					linesSent.Add(int64(bytes.Count(buf[off:off+k], []byte{'\n'})))
					sentHead = append(sentHead, buf[off:off+min(k, alertLen-len(sentHead))]...)
					sent.Add(int64(k))
					off += k
				}
				if werr != nil {
					inputLeft.Store(true)
					if !isClosedByPeer(werr) && !errors.Is(werr, net.ErrClosed) { // closed by the reader: the server left
						err = wrap("send", addr, werr)
					}
					break
				}
			}
			if rerr == io.EOF {
				if cw, ok := c.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite()
				}
				break
			}
			if rerr != nil {
				inputLeft.Store(true)
				err = stdioError("read input", rerr)
				break
			}
		}
		// Wake the reader before saying input is done, so that the
		// deadline it sets once it sees inputDone is the one that stays.
		// After an error it stops there: waiting out the silence for
		// replies to what was sent would only delay the error (shout
		// connect ADDR < / waited --timeout, nothing sent).
		sendFailed.Store(err != nil)
		c.SetReadDeadline(time.Unix(1, 0))
		inputDone.Store(true)
		if pipeInputDone != nil {
			pipeInputDone()
		}
		sendErr <- err
	}()

	var res PipeResult
	var recvErr error
	var head []byte // the first bytes the server sent, enough for an alert
	buf := make([]byte, 64<<10)
	armed := false
	taken := -1 // what unsent last said, once input is done (-1: not yet asked)
	for {
		// inputDone before sendFailed: the sender stores sendFailed
		// first, so a reader that sees input done sees its failure too.
		// Looked at the other way round, a failure stored between the two
		// looks was missed, and the silence's deadline set below took the
		// place of the sender's wake-up: CI saw `shout connect ADDR < /`'s
		// test wait out its hour.
		done := inputDone.Load()
		if pipeBetweenLooks != nil {
			pipeBetweenLooks()
		}
		if sendFailed.Load() {
			break
		}
		if done {
			// Not "every line answered, leave": a count of newlines
			// cannot tell the last reply from a line of the server's
			// own, and what came after it was dropped. The server's end
			// of file, or its silence, ends the wait.
			if !armed {
				// What the socket holds unsent as the wait begins (a Unix
				// socket's bytes until the server reads them): the first
				// look compared with nothing took any for the server
				// taking input, and a server that read none was waited
				// for twice the silence.
				if q, ok := unsent(c); ok {
					taken = q
				}
			}
			if silence > 0 {
				c.SetReadDeadline(time.Now().Add(silence))
			} else if !armed {
				c.SetReadDeadline(time.Time{})
			}
			armed = true
		}
		n, err := c.Read(buf)
		if n > 0 {
			head = append(head, buf[:min(n, alertLen-len(head))]...)
			res.Received += int64(n)
			res.MidLine = buf[n-1] != '\n'
			res.LinesBack += int64(bytes.Count(buf[:n], []byte{'\n'}))
			if werr := w.show(out, buf[:n]); werr != nil {
				recvErr = stdioError("write output", werr)
				break
			}
		}
		switch {
		case err == nil:
			continue
		case w.stuck.Load():
			res.Stuck = true
		case errors.Is(err, os.ErrDeadlineExceeded) && !armed:
			continue // the sender's wake-up
		case errors.Is(err, os.ErrDeadlineExceeded) && stillTaking(c, &taken):
			continue // not silent: the server is still taking what was sent
		case errors.Is(err, os.ErrDeadlineExceeded):
			res.Silent = true
		case errors.Is(err, io.EOF) || isClosedByPeer(err):
			res.Closed = true
		default:
			recvErr = wrap("receive", addr, err)
		}
		break
	}
	c.Close() // unblocks the sender if the server stopped reading
	var err error
	var echoed bool
	select {
	case err = <-sendErr:
		echoed = echoes(head, sentHead)
	case <-time.After(time.Second):
		// The sender is blocked reading input (a terminal, a pipe that
		// never ends): nothing more will be sent; do not wait for it.
		inputLeft.Store(true)
	}
	res.Sent, res.LinesSent, res.InputLeft = sent.Load(), linesSent.Load(), inputLeft.Load()
	res.TLSAlert = res.Received == alertLen && isAlert(head) && !echoed
	if res.TLSAlert {
		res.LinesBack = 0 // (its description may be 10, a newline's byte: no reply)
	}
	if recvErr != nil {
		return res, recvErr
	}
	return res, err
}

// echoes reports whether the server's first bytes, back, begin as the
// input's sent did, up to an alert's last byte: input shaped as a TLS
// alert (binary, a capture replayed) that a server echoed (shout serve,
// its mapping leaving all but that byte, the alert's description, as
// they are), not a TLS server's alert on plain text.
func echoes(back, sent []byte) bool {
	return len(back) >= alertLen-1 && len(sent) >= alertLen-1 && bytes.Equal(back[:alertLen-1], sent[:alertLen-1])
}

// stdioError is err, reading the input or writing the output (what),
// said once: a file's error names its operation and file already ("write
// /dev/stdout: no space left on device", as the other commands say it),
// and "write output: write /dev/stdout: ..." said it twice. Any other
// error follows what.
func stdioError(what string, err error) error {
	if pe := (*os.PathError)(nil); errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// isClosedByPeer reports whether err means the server went away.
func isClosedByPeer(err error) bool {
	return sockerr.Reset(err) || sockerr.BrokenPipe(err)
}

// stillTaking reports whether the server has taken more of what was sent
// since the last look (last is what unsent said then, -1 at first), as
// far as the socket tells: while bytes wait unacknowledged and their
// number changes, the server is busy reading, not silent.
func stillTaking(c net.Conn, last *int) bool {
	q, ok := unsent(c)
	if !ok || q == 0 || q == *last {
		return false
	}
	*last = q
	return true
}

// writePiece is the most Pipe hands the connection in one write, so that
// where the socket cannot tell how much the server has taken (unsent),
// a server reading slowly is still seen to read.
const writePiece = 16 << 10

// stuckWatch is what the sender and the reader tell the watch that ends
// a Pipe whose server stopped reading. Each tells it in one store of its
// own, so that the watch never sees a state between two (the reader done
// with out but its time not yet told: a pause in the output, once taken
// for the server's silence so). Times are on the monotonic clock, as
// durations since start (or on clock, where a test gives one).
type stuckWatch struct {
	start   time.Time
	clock   func() time.Duration // a test's clock, nil: time since start
	ticks   <-chan time.Time     // a test's ticks, nil: a ticker's
	writing atomic.Bool          // the sender is in a write to the server
	wrote   atomic.Int64         // when the sender last began or ended a write
	shown   atomic.Int64         // when the reader last wrote what the server sent to out; outBusy while it writes: a server that stops reading then is waiting for us
	stuck   atomic.Bool          // the watch took the server for stuck, and closed the connection
}

const outBusy = math.MaxInt64

// watchClock, set by a test, gives each Pipe's stuck watch a clock and
// ticks in place of the real ones: a stand-in server that reads slowly
// by the real clock, left without CPU for longer than the silence
// timeout on a busy machine, takes nothing meanwhile and so was rightly
// taken for stuck (1 run in 40 under -race at load average 13). On a
// clock that the server moves as it reads, its pauses are not silence.
var watchClock func() (now func() time.Duration, ticks <-chan time.Time)

func (w *stuckWatch) now() int64 {
	if w.clock != nil {
		return int64(w.clock())
	}
	return int64(time.Since(w.start))
}

// send writes p to c, as the sender.
func (w *stuckWatch) send(c net.Conn, p []byte) (int, error) {
	w.wrote.Store(w.now())
	w.writing.Store(true)
	n, err := c.Write(p)
	w.writing.Store(false)
	w.wrote.Store(w.now())
	return n, err
}

// show writes p, which the server sent, to out, as the reader.
func (w *stuckWatch) show(out io.Writer, p []byte) error {
	w.shown.Store(outBusy)
	_, err := out.Write(p)
	w.shown.Store(w.now())
	return err
}

// watch watches c, until stop is called, for a sender blocked in a write
// while the server neither takes a byte nor sends one for silence, and
// the reader is not busy with out (a pager waiting for its user holds
// the replies up, and with them the server); then it sets stuck and
// closes c, which ends the reader's wait and the sender's write. What the
// server takes is seen in the socket's unacknowledged bytes where the
// system tells them (Linux): a server reading slowly frees the sender
// only once it has taken a good part of the buffer.
func (w *stuckWatch) watch(c net.Conn, silence time.Duration) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(max(silence/4, 10*time.Millisecond))
		defer tick.Stop()
		ticks := tick.C
		if w.ticks != nil {
			ticks = w.ticks
		}
		last, taken := -1, int64(0) // what unsent said last, and when it changed
		for {
			select {
			case <-done:
				return
			case <-ticks:
			}
			now := w.now() // not the tick's: a late tick's time is old
			if q, ok := unsent(c); ok && q != last {
				last, taken = q, now
			}
			if !w.writing.Load() {
				continue
			}
			shown := w.shown.Load()
			if shown != outBusy && now-max(taken, w.wrote.Load(), shown) >= int64(silence) {
				w.stuck.Store(true)
				c.Close()
				return
			}
		}
	}()
	return func() { close(done); <-finished }
}
