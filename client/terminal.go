package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/peterh/liner"
)

// Terminal is the interactive client on a terminal: a prompt with line
// editing and history; each non-blank line is sent with a newline and its
// reply printed as soon as it arrives.
type Terminal struct {
	// Addr names the server in the prompt and in messages.
	Addr string
	// Dial connects again after the server closed, if Reconnect is set.
	Dial      func() (net.Conn, error)
	Reconnect bool
	// Timeout is how long to wait for a reply before showing the prompt
	// again (a late reply is printed when it comes). For UDP it is the
	// wait before each retry. Zero means 2 s.
	Timeout time.Duration
	// Retries is how many times a UDP line is sent again without a reply.
	Retries int
	// HistoryFile keeps the lines typed, across sessions; empty: none.
	HistoryFile string
	Out, Err    io.Writer
	// Exit ends the process when the server closes while the user is at
	// the prompt, which the line editor cannot be woken from.
	Exit func(code int)
}

// DefaultHistoryFile is $XDG_STATE_HOME/shout/history, or
// ~/.local/state/shout/history.
func DefaultHistoryFile() string {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "shout", "history")
}

// Run talks to c until the user leaves (Ctrl-D, Ctrl-C: status 0) or the
// server closes (status 1, unless Reconnect). It returns the exit status.
func (t *Terminal) Run(c net.Conn) int {
	if t.Timeout <= 0 {
		t.Timeout = 2 * time.Second
	}
	line := liner.NewLiner()
	line.SetCtrlCAborts(true)
	t.loadHistory(line)
	var closeOnce sync.Once
	finish := func(code int) int {
		closeOnce.Do(func() {
			t.saveHistory(line)
			line.Close()
		})
		return code
	}
	if isDatagram(c) {
		defer c.Close()
		// Ctrl-C while waiting for a reply, outside the editor's raw mode.
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT)
		defer func() { signal.Stop(sigs); close(sigs) }()
		go func() {
			if _, ok := <-sigs; ok {
				fmt.Fprintln(t.Out)
				t.Exit(finish(0))
			}
		}()
		return finish(t.datagrams(line, c))
	}

	s := &stream{t: t, c: c, replies: make(chan []byte, 64), closed: make(chan error, 1)}
	s.atPrompt.Lock()
	go s.read(func() {
		fmt.Fprintf(t.Err, "\r\nshout: %s closed the connection\r\n", t.Addr)
		t.Exit(finish(1))
	})
	defer func() { s.conn().Close() }()
	// Ctrl-C is a key at the prompt, but a signal while the terminal is
	// not in the editor's raw mode: leave the same way.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT)
	defer func() { signal.Stop(sigs); close(sigs) }()
	interrupted := make(chan struct{}, 1)
	go func() {
		for range sigs {
			if s.atPrompt.TryLock() {
				fmt.Fprintln(t.Out)
				t.Exit(finish(0))
				return
			}
			select {
			case interrupted <- struct{}{}:
			default:
			}
		}
	}()

	prompt := t.Addr + "> "
	for {
		s.printPending()
		s.atPrompt.Unlock()
		text, err := line.Prompt(prompt)
		s.atPrompt.Lock()
		if errors.Is(err, io.EOF) || errors.Is(err, liner.ErrPromptAborted) {
			fmt.Fprintln(t.Out)
			return finish(0)
		}
		if err != nil {
			fmt.Fprintf(t.Err, "shout: %v\n", err)
			return finish(1)
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		line.AppendHistory(text)
		if _, err := s.conn().Write([]byte(text + "\n")); err != nil {
			if code, ok := s.lost(err); !ok {
				return finish(code)
			}
			continue
		}
		if code, done := s.await(interrupted); done {
			return finish(code)
		}
	}
}

// stream is the state of a terminal session over a stream connection.
type stream struct {
	t        *Terminal
	mu       sync.Mutex
	c        net.Conn
	replies  chan []byte
	closed   chan error
	atPrompt sync.Mutex // unlocked while the user is at the prompt
}

func (s *stream) conn() net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

// read forwards what the server sends. When the server closes it
// reconnects if asked to; otherwise, if the user is at the prompt, it calls
// leave, and if not, it tells the main loop.
func (s *stream) read(leave func()) {
	buf := make([]byte, 64<<10)
	for {
		n, err := s.conn().Read(buf)
		if n > 0 {
			s.replies <- bytes.Clone(buf[:n])
		}
		if err == nil {
			continue
		}
		if s.t.Reconnect && s.redial(err) {
			continue
		}
		if s.atPrompt.TryLock() {
			leave()
			return
		}
		s.closed <- err
		return
	}
}

// redial connects again after err, with back-off; it reports false only if
// the connection was closed by this side.
func (s *stream) redial(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	fmt.Fprintf(s.t.Err, "\r\nshout: %s: %s; reconnecting\r\n", s.t.Addr, describeEnd(err))
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		c, err := s.t.Dial()
		if err == nil {
			s.mu.Lock()
			s.c = c
			s.mu.Unlock()
			fmt.Fprintf(s.t.Err, "shout: reconnected to %s\r\n", s.t.Addr)
			return true
		}
		time.Sleep(delay)
	}
}

func describeEnd(err error) string {
	if errors.Is(err, io.EOF) {
		return "the server closed the connection"
	}
	return Cause(err)
}

// lost handles a failed send: with Reconnect the reader is already
// reconnecting; otherwise the session ends with status 1.
func (s *stream) lost(err error) (code int, goOn bool) {
	if s.t.Reconnect {
		return 0, true
	}
	fmt.Fprintf(s.t.Err, "shout: %s: %s\n", s.t.Addr, describeEnd(err))
	return 1, false
}

// await prints the reply to one line as it arrives, until a newline, the
// timeout, Ctrl-C or the server closing.
func (s *stream) await(interrupted <-chan struct{}) (code int, done bool) {
	timeout := time.NewTimer(s.t.Timeout)
	defer timeout.Stop()
	for {
		select {
		case r := <-s.replies:
			s.t.Out.Write(r)
			if bytes.IndexByte(r, '\n') >= 0 {
				return 0, false
			}
		case err := <-s.closed:
			s.printPending()
			fmt.Fprintf(s.t.Err, "shout: %s: %s\n", s.t.Addr, describeEnd(err))
			return 1, true
		case <-timeout.C:
			fmt.Fprintf(s.t.Err, "shout: no reply within %v\n", s.t.Timeout)
			return 0, false
		case <-interrupted:
			fmt.Fprintln(s.t.Out)
			return 0, true
		}
	}
}

// printPending prints replies that came after their line's wait ended.
func (s *stream) printPending() {
	for {
		select {
		case r := <-s.replies:
			s.t.Out.Write(r)
		default:
			return
		}
	}
}

// datagrams is the terminal loop over UDP: each line one datagram.
func (t *Terminal) datagrams(line *liner.State, c net.Conn) int {
	buf := make([]byte, 1<<17)
	for {
		text, err := line.Prompt(t.Addr + " (udp)> ")
		if errors.Is(err, io.EOF) || errors.Is(err, liner.ErrPromptAborted) {
			fmt.Fprintln(t.Out)
			return 0
		}
		if err != nil {
			fmt.Fprintf(t.Err, "shout: %v\n", err)
			return 1
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		line.AppendHistory(text)
		n, tries, err := exchangeDatagram(c, []byte(text), buf, t.Timeout, t.Retries)
		switch {
		case err != nil:
			fmt.Fprintf(t.Err, "shout: %v\n", err)
			return 1
		case n < 0:
			fmt.Fprintf(t.Err, "shout: no reply after %d tries of %v: lost\n", tries, t.Timeout)
		default:
			fmt.Fprintf(t.Out, "%s\n", buf[:n])
		}
	}
}

func (t *Terminal) loadHistory(line *liner.State) {
	if t.HistoryFile == "" {
		return
	}
	if f, err := os.Open(t.HistoryFile); err == nil {
		line.ReadHistory(f)
		f.Close()
	}
}

func (t *Terminal) saveHistory(line *liner.State) {
	if t.HistoryFile == "" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(t.HistoryFile), 0o700); err != nil {
		return
	}
	if f, err := os.OpenFile(t.HistoryFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600); err == nil {
		line.WriteHistory(f)
		f.Close()
	}
}
