package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"shout/internal/sockerr"
)

// keepLost is how many lost lines' sockets stay open for a late reply.
const keepLost = 16

// exchange is one UDP line: its number, its text, the socket it alone
// uses (so that what arrives there answers it and no other line) and how
// many times it was sent. before is where tries went unanswered, at a
// name's addresses that then refused it, for its loss to name (as
// Datagrams names it), and elsewhere how many of tries they are.
type exchange struct {
	n         int
	text      string
	c         net.Conn
	tries     int
	before    []addrTries
	elsewhere int
}

// datagrams is the terminal loop over UDP: each line one datagram, sent
// once the line before it is answered or lost, from a socket of its own,
// as a DNS resolver sends each query from its own port. A reply to a line
// reported lost is shown as late for that line. The status is 1 if any
// line was lost.
func (s *session) datagrams(first net.Conn) int {
	t := s.t
	recv := make(chan received, 16)
	var (
		queue   []string
		cur     *exchange
		lost    []*exchange // still listening for a late reply
		sent    int
		failed  int
		leaving bool
	)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	defer func() {
		if first != nil {
			first.Close()
		}
		if cur != nil {
			cur.c.Close()
		}
		for _, e := range lost {
			e.c.Close()
		}
	}()
	status := func() int {
		if failed > 0 {
			return 1
		}
		return 0
	}
	// waiting says why the lines queued were not sent: a line is sent
	// once the one before it is answered or lost.
	waiting := func() string {
		if cur == nil {
			return ""
		}
		return fmt.Sprintf(": line %d had no reply yet", cur.n)
	}
	// done ends the current line; the next one goes out.
	done := func() {
		timer.Stop()
		cur.c.Close()
		cur = nil
	}
	// elsewhere sends the current line, refused where it went with err
	// (nothing listens there, nothing was taken), to the next address of
	// the server's name, if it has one (see Dial). It returns nil if it
	// did, or else the error that decided the line's fate: err, where
	// there is no next address, or the last send's.
	elsewhere := func(err error) error {
		for sockerr.Refused(err) {
			c := nextAddress(cur.c)
			if c == nil {
				return err
			}
			// The tries before the refused one waited their timeout: the
			// line has the rest, wherever they go, and its wait stays
			// bounded.
			if k := cur.tries - 1 - cur.elsewhere; k > 0 {
				cur.before = append(cur.before, addrTries{cur.c.RemoteAddr(), k})
				cur.elsewhere += k
			}
			cur.c.Close()
			cur.c, cur.tries = c, cur.tries-1
			s.startReader(c, recv)
			if err = s.sendAgain(cur, timer); err == nil {
				return nil
			}
			err = lineSendError(t.Addr, err)
		}
		return err
	}
	// lineFailed ends the current line, which got err, unless another
	// address of the server's takes it. A refused line is lost, and said
	// so as Datagrams says it; numbered, as the prompt's other words
	// number lines, among those typed and sent, not blank ones: there is
	// no file whose lines a number would find.
	lineFailed := func(err error) {
		if err = elsewhere(err); err == nil {
			return
		}
		settled(cur.c, err)
		failed++
		end := ""
		if sockerr.Refused(err) {
			end = ": lost"
		}
		s.say("line %d: %v%s", cur.n, err, end)
		done()
	}
	// next sends the next line typed, if there is one.
	next := func() {
		for cur == nil && len(queue) > 0 {
			text := queue[0]
			queue = queue[1:]
			sent++
			c := first
			first = nil
			if c == nil {
				var err error
				if c, err = s.dial(); err != nil {
					failed++
					s.say("line %d: %v", sent, err)
					continue
				}
			}
			cur = &exchange{n: sent, text: text, c: c}
			s.startReader(c, recv)
			if err := s.sendAgain(cur, timer); err != nil {
				lineFailed(lineSendError(t.Addr, err))
			}
		}
	}
	// timedOut sends the current line again, if it has tries left, or
	// says it lost; the next line goes out.
	timedOut := func() {
		if cur == nil {
			return
		}
		if cur.tries <= t.Retries {
			if err := s.sendAgain(cur, timer); err != nil {
				lineFailed(lineSendError(t.Addr, err))
				next()
			}
			return
		}
		settled(cur.c, nil)
		failed++
		where := fmt.Sprintf("after %s of %v", triesText(cur.tries), t.Timeout) // (the prompt names the server)
		if len(cur.before) > 0 {
			where = noReplyWhere(cur.before, addrTries{cur.c.RemoteAddr(), cur.tries - cur.elsewhere}, cur.tries, t.Timeout)
		}
		s.say("line %d: no reply %s: lost", cur.n, where)
		lost = append(lost, cur)
		if len(lost) > keepLost {
			lost[0].c.Close()
			lost = lost[1:]
		}
		cur = nil
		next()
	}
	for {
		if leaving && cur == nil && len(queue) == 0 {
			return status()
		}
		select {
		case in := <-s.input:
			if code, left := s.userLeft(in); left {
				if !errors.Is(in.err, io.EOF) {
					return s.notSent(len(queue), waiting(), max(code, status()))
				}
				leaving = true
				continue
			}
			if strings.TrimSpace(in.line) == "" {
				continue
			}
			s.remember(in.line)
			queue = append(queue, in.line)
			next()
		case r := <-recv:
			switch {
			case cur != nil && r.c == cur.c:
				if r.err != nil { // connection refused: the server's port is closed
					lineFailed(wrap("receive", t.Addr, r.err)) // (unless its next address took it)
				} else {
					s.showDatagram(r.data)
					settled(cur.c, nil)
					done()
				}
				next() // (none while the line is out)
			default:
				for i, e := range lost {
					if r.c != e.c {
						continue
					}
					if r.err == nil {
						s.say("late reply to line %d %q: %s", e.n, e.text, bytes.TrimSuffix(new(visible).append(nil, r.data, true), []byte{'\n'})) // say ends the line
					}
					e.c.Close()
					lost = append(lost[:i], lost[i+1:]...)
					break
				}
			}
		case <-timer.C:
			timedOut()
		case <-replyTimeouts: // (a test's clock; nil, and never, otherwise)
			timer.Stop()
			timedOut()
		case sig := <-s.signals:
			return s.notSent(len(queue), waiting(), max(signalStatus(sig), status()))
		}
	}
}

// sendAgain sends e's line (once more) and sets timer for its reply. A
// line longer than a datagram to e's address carries is not sent: the
// error is a tooLongError, as Datagrams says it.
func (s *session) sendAgain(e *exchange, timer *time.Timer) error {
	e.tries++
	if most := MaxPayload(e.c.RemoteAddr()); len(e.text) > most {
		return tooLongError(most)
	}
	if _, err := e.c.Write([]byte(e.text)); err != nil {
		return err
	}
	timer.Reset(s.t.Timeout)
	return nil
}

// lineSendError is err, from sendAgain to addr, as a line says it: a line
// too long for a datagram in Datagrams' words, any other a failed send.
func lineSendError(addr string, err error) error {
	if _, ok := err.(tooLongError); ok {
		return err
	}
	return wrap("send", addr, err)
}

// showDatagram prints a reply datagram on a line of its own.
func (s *session) showDatagram(p []byte) {
	var out []byte
	if s.t.Raw {
		out = ownLine(p)
	} else {
		out = ownLine(s.vis.append(nil, p, true))
	}
	s.write(s.rl, out)
}
