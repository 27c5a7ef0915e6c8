//go:build unix

package client_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"shout/client"
	"shout/endpoint"
)

// ptyScreen is what a Terminal run in the test wrote on its terminal.
type ptyScreen struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	more chan struct{} // closed, and made again, at each read
}

// expect waits, at most bound, for s to show want after what an earlier
// expect took.
func (s *ptyScreen) expect(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(bound)
	for {
		s.mu.Lock()
		i := strings.Index(s.buf.String(), want)
		if i >= 0 {
			s.buf.Next(i + len(want))
		}
		more := s.more
		s.mu.Unlock()
		if i >= 0 {
			return
		}
		select {
		case <-more:
		case <-deadline:
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Fatalf("terminal never showed %q; after the last expected it has %q", want, s.buf.String())
		}
	}
}

// A line typed at the prompt over UDP to a name whose first address was
// refused went no further: "line 1: ... connection refused", where TCP's
// connect went on to the next address. It goes to the next address, and
// so does the next line, without a refusal.
func TestTerminalDatagramRefusedGoesToNextAddress(t *testing.T) {
	name, _ := twoAddrs(t)
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 120})
	scr := &ptyScreen{more: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			scr.mu.Lock()
			scr.buf.Write(buf[:n])
			close(scr.more)
			scr.more = make(chan struct{})
			scr.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	dialName := func() (net.Conn, error) {
		return client.Dial(context.Background(), endpoint.Endpoint{Network: "udp", Address: name}, bound)
	}
	c, err := dialName()
	if err != nil {
		t.Fatal(err)
	}
	term := &client.Terminal{Addr: name, Dial: dialName, Timeout: bound, In: tty, Out: tty, Err: tty}
	code := make(chan int, 1)
	go func() { code <- term.Run(c) }()
	scr.expect(t, name+" (udp)> ")
	io.WriteString(ptmx, "one\r")
	scr.expect(t, "ONE")
	io.WriteString(ptmx, "two\r")
	scr.expect(t, "TWO")
	io.WriteString(ptmx, "\x04")
	select {
	case got := <-code:
		if got != 0 {
			t.Errorf("exit status %d, want 0: every line answered", got)
		}
	case <-time.After(bound):
		t.Fatal("Ctrl-D did not end the session")
	}
	scr.mu.Lock()
	defer scr.mu.Unlock()
	if strings.Contains(scr.buf.String(), "refused") {
		t.Errorf("a refusal was said: %q", scr.buf.String())
	}
}
