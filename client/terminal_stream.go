package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

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
		queue    []string    // typed, not sent yet (no connection)
		due      []time.Time // when each line sent and not yet answered is late
		reported int         // how many of due were reported late
		leaving  bool        // Ctrl-D: leave once every line is answered or late
		// When the connection was made, and how long to wait before the
		// next dial: a server that closes each connection at once must
		// not be dialled again at once, for ever.
		since   = time.Now()
		backoff time.Duration
	)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	arm := func() {
		timer.Stop()
		if reported < len(due) {
			timer.Reset(time.Until(due[reported]))
		}
	}
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	s.startReader(c, recv)

	// ended handles the end of c; it returns false if the session ends.
	ended := func(err error) (code int, goOn bool) {
		c.Close()
		c = nil
		why := endMessage(t.Addr, err)
		if n := len(due); n > 0 { // not sent again: the server may have had them
			why += fmt.Sprintf(", %s sent and not answered", linesText(n))
		}
		due, reported = nil, 0
		arm()
		if !t.Reconnect || leaving {
			if n := len(queue); n > 0 { // a line whose write failed
				why += fmt.Sprintf(", %s not sent", linesText(n))
			}
			s.say("%s", why)
			return 1, false
		}
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
	send := func(line string) (code int, goOn bool) {
		if _, err := c.Write([]byte(line + "\n")); err != nil {
			// Sent again on the next connection, or said not sent.
			queue = append([]string{line}, queue...)
			return ended(err)
		}
		due = append(due, time.Now().Add(t.Timeout))
		if len(due)-reported == 1 {
			arm()
		}
		return 0, true
	}

	for {
		if leaving && c != nil && len(queue) == 0 && reported == len(due) {
			return 0
		}
		select {
		case in := <-s.input:
			if code, left := s.userLeft(in); left {
				code = s.notSent(len(queue), ": no connection", code) // typed while reconnecting
				if !errors.Is(in.err, io.EOF) || c == nil {
					return code
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
			if code, goOn := send(in.line); !goOn {
				return code
			}
		case r := <-recv:
			if r.c != c {
				continue // an earlier connection's last words
			}
			if len(r.data) > 0 {
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
			c, since = nc, time.Now()
			s.startReader(c, recv)
			s.say("reconnected to %s", t.Addr)
			for len(queue) > 0 && c != nil {
				line := queue[0]
				queue = queue[1:]
				if code, goOn := send(line); !goOn {
					return code
				}
			}
		case <-timer.C:
			for reported < len(due) && !time.Now().Before(due[reported]) {
				reported++
				s.say("no reply within %v", t.Timeout)
			}
			arm()
		case sig := <-s.signals:
			return s.notSent(len(queue), ": no connection", signalStatus(sig))
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
