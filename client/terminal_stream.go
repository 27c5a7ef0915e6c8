package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"shout/internal/sockerr"
)

// clock is the stream session's clock for how long a connection was
// idle (a test's, to move it).
var clock = time.Now

// received is what a connection's reader got: bytes, or the error that
// ended it.
type received struct {
	c    net.Conn
	data []byte
	err  error
}

// stream is the terminal loop over a stream connection. Lines go out as
// they are typed; what comes back is printed as it comes. A line not
// answered (by a newline) within the timeout is reported, and its reply
// still printed when it comes.
func (s *session) stream(c net.Conn) int {
	t := s.t
	recv := make(chan received, 16)
	redialed := make(chan net.Conn)
	var (
		w        *lineWriter // writes the lines typed to c
		queue    []string    // typed, not sent yet (no connection)
		due      []time.Time // when each line sent and not yet answered is late
		reported int         // how many of due were reported late
		leaving  bool        // Ctrl-D: leave once every line is answered or late
		// When the connection was made, and how long to wait before the
		// next dial: a server that closes each connection at once must
		// not be dialled again at once, for ever.
		since   = time.Now()
		backoff time.Duration
		// heard: c sent something. A plain TCP server that closes in
		// silence after lines were sent may be a TLS server.
		heard bool
		// Lines that fall late within lateQuiet of a report are said in
		// the next, together: a paste of a thousand lines to a server
		// that does not answer said "no reply within 2s" a thousand times.
		quiet time.Time
		// When c was made, a line handed to its writer or a byte came
		// back, by clock: a server that closes a connection idle since
		// (--idle-timeout) is said to have closed it after so long idle.
		active = clock()
	)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	arm := func() {
		timer.Stop()
		if reported < len(due) {
			timer.Reset(max(time.Until(due[reported]), time.Until(quiet)))
		}
	}
	defer func() {
		if w != nil {
			w.stop()
		}
	}()
	s.startReader(c, recv)
	w = s.startWriter(c, recv)

	// ended handles the end of c; it returns false if the session ends.
	ended := func(err error) (code int, goOn bool) {
		unwritten := w.stop()
		_, plain := c.(*net.TCPConn)
		c, w = nil, nil
		why := endMessage(t.Addr, err)
		if idle := clock().Sub(active); len(due) == 0 && errors.Is(err, io.EOF) && idle >= time.Second {
			// Not of a close within a second, as at a connection limit.
			why += fmt.Sprintf(" after %v idle", idle.Round(100*time.Millisecond))
		}
		hint := ""
		// The last lines handed to the writer are those it did not
		// write: sent again on the next connection, or said not sent.
		if n := len(due) - len(unwritten); n > 0 { // not sent again: the server may have had them
			why += fmt.Sprintf(", %s sent and not answered", linesText(n))
			if plain && !heard && (errors.Is(err, io.EOF) || sockerr.Reset(err)) {
				hint = "; " + SilentClose(t.Addr)
			}
		}
		queue = append(unwritten, queue...)
		due, reported = nil, 0
		arm()
		if !t.Reconnect || leaving {
			if n := len(queue); n > 0 {
				why += fmt.Sprintf(", %s not sent", linesText(n))
			}
			s.say("%s%s", why, hint)
			return 1, false
		}
		why += hint
		if time.Since(since) < time.Second {
			backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
		} else {
			backoff = 0
		}
		if backoff > 0 {
			s.say("%s; reconnecting in %v", why, backoff)
		} else {
			s.say("%s; reconnecting", why)
		}
		go s.redial(redialed, backoff)
		return 0, true
	}
	send := func(line string) {
		w.add(line)
		active = clock()
		due = append(due, time.Now().Add(t.Timeout))
		if len(due)-reported == 1 {
			arm()
		}
	}
	// leave ends the session with status code, and says which lines
	// typed did not go out.
	leave := func(code int) int {
		if w == nil {
			return s.notSent(len(queue), ": no connection", code) // typed while reconnecting
		}
		unwritten := w.stop()
		w = nil
		return s.notSent(len(unwritten), ": the server took no more input", code)
	}

	for {
		if leaving && c != nil && reported == len(due) {
			return leave(0)
		}
		select {
		case in := <-s.input:
			if code, left := s.userLeft(in); left {
				if !errors.Is(in.err, io.EOF) || c == nil {
					return leave(code)
				}
				leaving = true
				continue
			}
			if strings.TrimSpace(in.line) == "" {
				continue
			}
			s.remember(in.line)
			if c == nil {
				queue = append(queue, in.line)
				continue
			}
			send(in.line)
		case r := <-recv:
			if r.c != c {
				continue // an earlier connection's last words
			}
			if len(r.data) > 0 {
				heard, active = true, clock()
				s.show(r.data)
				answered := min(bytes.Count(r.data, []byte{'\n'}), len(due))
				due = due[answered:]
				reported = max(reported-answered, 0)
				arm()
			}
			if r.err != nil {
				s.flushEscape()
				if code, goOn := ended(r.err); !goOn {
					return code
				}
			}
		case nc := <-redialed:
			c, since, heard, active = nc, time.Now(), false, clock()
			s.startReader(c, recv)
			w = s.startWriter(c, recv)
			s.say("reconnected to %s", t.Addr)
			for _, line := range queue {
				send(line)
			}
			queue = nil
		case <-timer.C:
			now := time.Now()
			n := 0
			for reported < len(due) && !now.Before(due[reported]) {
				reported++
				n++
			}
			switch {
			case n == 1:
				s.say("no reply within %v", t.Timeout)
			case n > 1:
				s.say("no reply within %v to %d lines", t.Timeout, n)
			}
			if n > 0 {
				quiet = now.Add(lateQuiet)
			}
			arm()
		case sig := <-s.signals:
			return leave(signalStatus(sig))
		}
	}
}

// startReader forwards what c sends to recv until c ends.
func (s *session) startReader(c net.Conn, recv chan<- received) {
	// Over UDP a read of nothing is a reply, an empty datagram; over a
	// stream it is none.
	udp := isDatagram(c)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			r := received{c: c, err: err}
			if n > 0 {
				r.data = bytes.Clone(buf[:n])
			}
			if n == 0 && err == nil && !udp {
				continue
			}
			select {
			case recv <- r:
			case <-s.done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
}

// lineWriter writes the lines typed to a connection, in order, from a
// goroutine of its own: a server that stops reading holds up the lines
// behind, not the session, which still prints what comes, says what is
// late and hears Ctrl-C. (Written by the session itself, a full socket
// buffer kept it in the write for ever, deaf to all of that.)
type lineWriter struct {
	c     net.Conn
	mu    sync.Mutex
	lines []string // handed to it, not yet written (the first may be being written)
	wake  chan struct{}
	quit  chan struct{}
	done  chan struct{}
}

// startWriter starts writing to c the lines handed to the writer; a
// write's failure is sent to recv, as the end of c.
func (s *session) startWriter(c net.Conn, recv chan<- received) *lineWriter {
	w := &lineWriter{c: c, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.wake:
			case <-w.quit:
				return
			}
			for {
				w.mu.Lock()
				if len(w.lines) == 0 {
					w.mu.Unlock()
					break
				}
				line := w.lines[0]
				w.mu.Unlock()
				if _, err := c.Write([]byte(line + "\n")); err != nil {
					// The line stays first among those not written.
					select {
					case recv <- received{c: c, err: err}:
					case <-w.quit:
					case <-s.done:
					}
					return
				}
				w.mu.Lock()
				w.lines = w.lines[1:]
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// add hands line to the writer.
func (w *lineWriter) add(line string) {
	w.mu.Lock()
	w.lines = append(w.lines, line)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// stop closes the connection, which ends a write waiting on the server,
// and returns, once the writer has ended, the lines it did not write
// (one it was writing among them: the server may have had part of it).
func (w *lineWriter) stop() []string {
	w.c.Close()
	close(w.quit)
	<-w.done
	return w.lines
}

// redial connects again, after wait, with back-off, until it can or the
// session ends.
func (s *session) redial(redialed chan<- net.Conn, wait time.Duration) {
	if wait > 0 {
		select {
		case <-time.After(wait):
		case <-s.done:
			return
		}
	}
	said := false
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		c, err := s.dial()
		if err == nil {
			select {
			case redialed <- c:
			case <-s.done:
				c.Close()
			}
			return
		}
		select {
		case <-s.done: // left meanwhile: nothing more to say
			return
		default:
		}
		if !said {
			// Once: the prompt is back, and a server that stays down
			// would otherwise look like one that is up and slow.
			s.say("%v; trying again until it answers", err)
			said = true
		}
		select {
		case <-time.After(delay):
		case <-s.done:
			return
		}
	}
}

// flushEscape shows what was held back at the end of what the server
// sent: half a character, a "\r" (an ESC alone, with Raw, is dropped).
func (s *session) flushEscape() {
	s.escape = nil
	if !s.t.Raw {
		if out := s.vis.append(nil, nil, true); len(out) > 0 {
			s.write(s.rl, out)
		}
	}
}

// lateQuiet is how long after saying that lines got no reply the
// terminal waits before it says so of more.
const lateQuiet = 100 * time.Millisecond

// linesText is "1 line" or "n lines".
func linesText(n int) string {
	if n == 1 {
		return "1 line"
	}
	return fmt.Sprintf("%d lines", n)
}

// endMessage says how the connection to addr ended.
func endMessage(addr string, err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return addr + " closed the connection"
	}
	return addr + ": " + Cause(err)
}
