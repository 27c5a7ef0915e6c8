//go:build unix

package client_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"

	"shout/client"
	"shout/endpoint"
	"shout/internal/shouttest"
)

// ptyScreen is what a Terminal run in the test wrote on its terminal.
type ptyScreen struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	more chan struct{} // closed, and made again, at each read
}

// read takes what the Terminal writes on the terminal whose other end
// is ptmx, until it fails.
func (s *ptyScreen) read(ptmx io.Reader) {
	buf := make([]byte, 4096)
	for {
		n, err := ptmx.Read(buf)
		s.mu.Lock()
		s.buf.Write(buf[:n])
		close(s.more)
		s.more = make(chan struct{})
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// expect waits, at most bound, for s to show want after what an earlier
// expect took, and returns what it showed before want.
func (s *ptyScreen) expect(t *testing.T, want string) (before string) {
	t.Helper()
	deadline := time.After(bound)
	for {
		s.mu.Lock()
		i := strings.Index(s.buf.String(), want)
		if i >= 0 {
			before = string(s.buf.Next(i + len(want))[:i])
		}
		more := s.more
		s.mu.Unlock()
		if i >= 0 {
			return before
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

// udpPrompt runs a Terminal on a pty, over UDP to addr (dialed again for
// each line, so that a name's next address can be taken) with retries
// Retries, and returns once it shows its prompt: what the test types
// goes to ptmx, what the session prints is read from scr, and its exit
// status comes on code.
func udpPrompt(t *testing.T, addr string, retries int) (ptmx *os.File, scr *ptyScreen, code chan int) {
	t.Helper()
	return udpPromptTraced(t, addr, retries, nil)
}

// udpPromptTraced is udpPrompt whose sockets are traced to trace, if it
// is not nil.
func udpPromptTraced(t *testing.T, addr string, retries int, trace io.Writer) (ptmx *os.File, scr *ptyScreen, code chan int) {
	t.Helper()
	c, redial := dial(t, "udp", addr), dialer(t, addr)
	if trace != nil {
		c, redial = client.Trace(c, trace), tracedDialer(t, addr, trace)
	}
	term := &client.Terminal{Addr: addr, Dial: redial, Timeout: bound, Retries: retries}
	return onPTY(t, term, c, addr+" (udp)> ")
}

// onPTY runs term over c on a pty until the test ends, and returns once
// it shows prompt: what the test types goes to ptmx, what the session
// prints is read from scr, and its exit status comes on code. A session
// the test leaves running (it failed) is ended, with Ctrl-C, and waited
// for before the test's earlier cleanups put back what they changed
// (SetLookup's resolver, SetReplyTimeouts' clock): a session still
// running read them, and one failure became a race report in the next
// test too.
func onPTY(t *testing.T, term *client.Terminal, c net.Conn, prompt string) (ptmx *os.File, scr *ptyScreen, code chan int) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		c.Close()
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() { ptmx.Close(); tty.Close() })
	pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 120})
	scr = &ptyScreen{more: make(chan struct{})}
	go scr.read(ptmx)
	term.In, term.Out, term.Err = tty, tty, tty
	code = make(chan int, 1)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		code <- term.Run(c)
	}()
	t.Cleanup(func() { // (run first: registered last)
		select {
		case <-ended:
			return
		default:
		}
		io.WriteString(ptmx, "\x03")
		select {
		case <-ended:
		case <-time.After(bound):
			t.Errorf("the session did not end at Ctrl-C")
		}
	})
	scr.expect(t, prompt)
	return ptmx, scr, code
}

// ctrlD types Ctrl-D at udpPrompt's prompt, and returns the session's
// exit status once it ends, at most bound later.
func ctrlD(t *testing.T, ptmx io.Writer, code <-chan int) int {
	t.Helper()
	io.WriteString(ptmx, "\x04")
	select {
	case got := <-code:
		return got
	case <-time.After(bound):
		t.Fatal("Ctrl-D did not end the session")
		return -1
	}
}

// A line typed at the prompt over UDP to a name whose first address was
// refused went no further: "line 1: ... connection refused", where TCP's
// connect went on to the next address. It goes to the next address, and
// so does the next line, without a refusal: [::1] is connected to once.
func TestTerminalDatagramRefusedGoesToNextAddress(t *testing.T) {
	name, server := twoAddrs(t)
	var trace notifying
	ptmx, scr, code := udpPromptTraced(t, name, 0, &trace)
	io.WriteString(ptmx, "one\r")
	scr.expect(t, "ONE")
	io.WriteString(ptmx, "two\r")
	scr.expect(t, "TWO")
	if got := ctrlD(t, ptmx, code); got != 0 {
		t.Errorf("exit status %d, want 0: every line answered", got)
	}
	scr.mu.Lock()
	defer scr.mu.Unlock()
	if strings.Contains(scr.buf.String(), "refused") {
		t.Errorf("a refusal was said: %q", scr.buf.String())
	}
	_, port, _ := net.SplitHostPort(server)
	if got, want := connects(trace.String()), []string{net.JoinHostPort("::1", port), server, server}; !slices.Equal(got, want) {
		t.Errorf("sockets connected to %v; want %v: line 2 to %s alone", got, want, server)
	}
}

// At the prompt as in a pipe, a line refused at a name's first address
// after a try there went unanswered goes to the next address with the
// tries it has left: there it was sent retries+1 times more, and waited
// (retries+2) timeouts in all.
func TestTerminalDatagramLateRefusalKeepsLineBound(t *testing.T) {
	name, sent4 := lateRefusal(t)
	ptmx, scr, code := udpPrompt(t, name, 1)
	io.WriteString(ptmx, "one\r")
	scr.expect(t, "line 1: ")
	if said := scr.expect(t, "\n"); !strings.Contains(said, "no reply after 2 tries") {
		t.Errorf("line 1 said %q; want it lost after 2 tries", said)
	}
	if got := sent4(); got != 1 {
		t.Errorf("127.0.0.1 was sent the line %d times; want 1: with Retries 1, one try was left after [::1]'s unanswered one", got)
	}
	ctrlD(t, ptmx, code)
}

// At the prompt as in a pipe, a line refused late at a name's first
// address and then at its second goes on to its third with the tries it
// still has: with Retries 2, one.
func TestTerminalDatagramLateRefusalsAcrossThreeAddresses(t *testing.T) {
	name, sent4 := threeAddrsLateRefusals(t)
	ptmx, scr, code := udpPrompt(t, name, 2)
	io.WriteString(ptmx, "one\r")
	scr.expect(t, "line 1: ")
	said := scr.expect(t, "\n")
	ctrlD(t, ptmx, code)
	if !strings.Contains(said, "no reply after 3 tries") {
		t.Errorf("line 1 said %q; want it lost after 3 tries", said)
	}
	if got := sent4(); got != 1 {
		t.Errorf("127.0.0.1 was sent the line %d times; want 1: with Retries 2, one try was left after [::1]'s and 127.0.0.2's", got)
	}
}

// At the prompt as in a pipe, a line lost after tries at a name's
// addresses that refused it late says where they went: the prompt said
// "no reply after 2 tries", as where all went to one address.
func TestTerminalDatagramLostAfterLateRefusalSaysWhere(t *testing.T) {
	for _, tc := range []struct {
		name    string
		addrs   func(t *testing.T) (string, func() int)
		retries int
		want    string // %[1]s the port, %[2]v the timeout
	}{
		{"two addresses", lateRefusal, 1, "line 1: no reply after 2 tries of %[2]v (1 to [::1]:%[1]s, then refused; 1 to 127.0.0.1:%[1]s): lost"},
		{"three addresses", threeAddrsLateRefusals, 2, "line 1: no reply after 3 tries of %[2]v (1 to [::1]:%[1]s, then refused; 1 to 127.0.0.2:%[1]s, then refused; 1 to 127.0.0.1:%[1]s): lost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, _ := tc.addrs(t)
			_, port, _ := net.SplitHostPort(name)
			ptmx, scr, code := udpPrompt(t, name, tc.retries)
			io.WriteString(ptmx, "one\r")
			scr.expect(t, "line 1: ")
			said := "line 1: " + scr.expect(t, "\n")
			ctrlD(t, ptmx, code)
			if want := fmt.Sprintf(tc.want, port, bound); !strings.Contains(said, want) {
				t.Errorf("said %q; want %q", said, want)
			}
		})
	}
}

// At the prompt as in a pipe, an address of a name that refused a line
// too is not where later lines go first: with nothing listening at
// either, line 2 went first to 127.0.0.1, which refused line 1 last.
// Each line goes to [::1] first, the resolver's order.
func TestTerminalDatagramRefusedEverywhereKeepsOrder(t *testing.T) {
	name, server, six, _ := twoAddrsRefusing(t)
	var trace notifying
	ptmx, scr, code := udpPromptTraced(t, name, 0, &trace)
	for _, line := range []string{"one", "two"} {
		io.WriteString(ptmx, line+"\r")
		scr.expect(t, "connection refused")
	}
	ctrlD(t, ptmx, code)
	if got, want := connects(trace.String()), []string{six, server, six, server}; !slices.Equal(got, want) {
		t.Errorf("sockets connected to %v; want %v: each line to [::1] first", got, want)
	}
}

// At the prompt as in a pipe, the address a line went on to after a
// refusal, and lost at, is where the next line goes first: it did not
// refuse the line. (Not remembering it passed every other test.)
func TestTerminalDatagramLostAfterRefusalKeepsAddress(t *testing.T) {
	name, server, six := refusedThenSilent(t)
	var trace notifying
	ptmx, scr, code := udpPromptTraced(t, name, 1, &trace)
	for n, line := range []string{"one", "two"} {
		io.WriteString(ptmx, line+"\r")
		said := scr.expect(t, ": lost")
		// All its tries went to 127.0.0.1: the refusal at [::1] cost none.
		if want := fmt.Sprintf("line %d: no reply after 2 tries of %v", n+1, bound); !strings.HasSuffix(said, want) {
			t.Errorf("said %q; want %q", said, want)
		}
	}
	ctrlD(t, ptmx, code)
	if got, want := connects(trace.String()), []string{six, server, server}; !slices.Equal(got, want) {
		t.Errorf("sockets connected to %v; want %v: line 2 to %s alone", got, want, server)
	}
}

// At the prompt as in a pipe, the address a line went on to after a
// refusal, and failed at for another cause (too long for IPv4), is where
// the next line goes first: it did not refuse the line. (Not
// remembering it passed every other test.)
func TestTerminalDatagramFailedAfterRefusalKeepsAddress(t *testing.T) {
	name, server := twoAddrs(t)
	_, port, _ := net.SplitHostPort(server)
	var trace notifying
	ptmx, scr, code := udpPromptTraced(t, name, 0, &trace)
	io.WriteString(ptmx, strings.Repeat("a", client.MaxDatagram+10)+"\r") // (less than IPv6 carries)
	scr.expect(t, "not sent")
	io.WriteString(ptmx, "two\r")
	scr.expect(t, "TWO")
	ctrlD(t, ptmx, code)
	if got, want := connects(trace.String()), []string{net.JoinHostPort("::1", port), server, server}; !slices.Equal(got, want) {
		t.Errorf("sockets connected to %v; want %v: line 2 to %s alone", got, want, server)
	}
}

// A line refused at a name's [::1] and too long for its 127.0.0.1 (IPv4
// carries less) is said to have failed for that, which decided it, in
// the words a pipe says it with: the prompt said [::1]'s "connection
// refused", of an address the line had left, and then the send's
// "message too long".
func TestTerminalDatagramSaysLastError(t *testing.T) {
	name, _ := twoAddrs(t)
	ptmx, scr, code := udpPrompt(t, name, 0)
	io.WriteString(ptmx, strings.Repeat("a", client.MaxDatagram+10)+"\r") // (less than IPv6 carries)
	scr.expect(t, "line 1: ")
	said := scr.expect(t, "\n")
	ctrlD(t, ptmx, code)
	if want := fmt.Sprintf("longer than %d bytes, the most one datagram carries: not sent", client.MaxDatagram); !strings.Contains(said, want) || strings.Contains(said, "refused") {
		t.Errorf("line 1 said %q; want %q, for 127.0.0.1, not [::1]'s refusal", said, want)
	}
}

// A line refused at the prompt (ICMP port unreachable: nothing listens
// there) is said lost, in the words a pipe says it with: the prompt said
// "line 1: receive ...: connection refused", not that the line was lost,
// where Datagrams says "...: lost". Lines are counted as typed and sent:
// the blank one, not sent, is not counted (a pipe counts input lines).
func TestTerminalDatagramRefusedSaidLost(t *testing.T) {
	addr := shouttest.RefusingUDP(t)
	ptmx, scr, code := udpPrompt(t, addr, 0)
	want := "receive " + addr + ": connection refused: lost"
	io.WriteString(ptmx, "one\r")
	scr.expect(t, "line 1: ")
	if said := scr.expect(t, "\n"); !strings.Contains(said, want) {
		t.Errorf("line 1 said %q; want %q", said, want)
	}
	io.WriteString(ptmx, "\rtwo\r")
	scr.expect(t, "line 2: ")
	if said := scr.expect(t, "\n"); !strings.Contains(said, want) {
		t.Errorf("line 2 said %q; want %q", said, want)
	}
	if got := ctrlD(t, ptmx, code); got != 1 {
		t.Errorf("exit status %d, want 1: lines were lost", got)
	}
}

// A line typed at the prompt longer than one datagram to the server
// carries is said so, in the words a pipe says it with, and not sent;
// the next line is. The prompt sent it, and said the kernel's "send ...:
// message too long", where a pipe said "longer than 65507 bytes, the
// most one datagram carries: not sent".
func TestTerminalDatagramLongLineSaidAsInAPipe(t *testing.T) {
	addr := udpServer(t, func(int) bool { return false })
	ptmx, scr, code := udpPrompt(t, addr, 0)
	io.WriteString(ptmx, strings.Repeat("a", client.MaxDatagram+10)+"\r")
	scr.expect(t, "line 1: ")
	said := scr.expect(t, "\n")
	io.WriteString(ptmx, "two\r")
	scr.expect(t, "TWO")
	if got := ctrlD(t, ptmx, code); got != 1 {
		t.Errorf("exit status %d, want 1: a line was not sent", got)
	}
	// Not sent, so not lost: only a refused line is said lost.
	if want := fmt.Sprintf("longer than %d bytes, the most one datagram carries: not sent", client.MaxDatagram); !strings.Contains(said, want) || strings.Contains(said, "lost") {
		t.Errorf("line 1 said %q; want %q, not lost", said, want)
	}
}

// The session's last words, said as the editor reads a line, wait for
// the editor to print them; an editor left without CPU (a busy machine)
// is given a second to stop, and when it had not, they were never
// printed: the server's close ended the session with status 1 and
// nothing said. The editor's goroutine is held here as it stops.
func TestTerminalLastWordsEditorHeld(t *testing.T) {
	closeNow := make(chan struct{})
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		<-closeNow
	})
	hold := make(chan struct{})
	client.SetHoldLines(t, hold)
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(hold) }) }
	defer release()
	_, scr, code := tcpPrompt(t, addr)
	close(closeNow)
	endedAtClose(t, code)
	scr.expect(t, addr+" closed the connection")
	release()
}

// A server that closes a connection idle since its last reply (shout
// serve --idle-timeout) is said to have closed it after so long idle, by
// the client's clock, which the test moves: the prompt said only "closed
// the connection", as of a server that closed it at once. Said only when
// true: not of a connection whose reply came just now, nor of one with a
// line unanswered, nor of a reset.
func TestTerminalSaysHowLongIdleBeforeTheClose(t *testing.T) {
	for _, tc := range []struct {
		name   string
		typed  bool          // "hi" is typed, and the server reads it
		late   time.Duration // the clock moves on before the server answers it
		answer bool          // the server answers it
		idle   time.Duration // the clock moves on before the server closes
		reset  bool          // the server resets the connection
		said   string        // after "shout: ADDR", up to a hint after ";"
	}{
		{"answered", true, 0, true, 2*time.Second + 40*time.Millisecond, false, " closed the connection after 2s idle"},
		{"a second", true, 0, true, time.Second, false, " closed the connection after 1s idle"},
		// Under a second is no idle close: a server at its connection
		// limit closes at once.
		{"under a second", true, 0, true, 900 * time.Millisecond, false, " closed the connection"},
		// Idle since the connection was made.
		{"nothing typed", false, 0, false, 3 * time.Second, false, " closed the connection after 3s idle"},
		{"nothing typed, closed at once", false, 0, false, 0, false, " closed the connection"},
		// A reply is no idleness: a server that answers late and then
		// closes was not idle for as long.
		{"answered late", true, 5 * time.Second, true, 0, false, " closed the connection"},
		// A line unanswered is the server's, not idleness.
		{"not answered", true, 0, false, 3 * time.Second, false, " closed the connection, 1 line sent and not answered"},
		{"reset", true, 0, true, 3 * time.Second, true, ": connection reset by the server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var clock atomic.Int64
			client.SetClock(t, func() time.Time { return time.Unix(0, clock.Load()) })
			read, answer, closeNow := make(chan struct{}), make(chan struct{}), make(chan struct{})
			addr := shouttest.StreamServer(t, func(c net.Conn) {
				if tc.typed {
					line, _ := bufio.NewReader(c).ReadString('\n')
					close(read)
					<-answer
					if tc.answer {
						io.WriteString(c, strings.ToUpper(line))
					}
				}
				<-closeNow
				if tc.reset {
					c.(*net.TCPConn).SetLinger(0)
				}
			})
			ptmx, scr, code := tcpPrompt(t, addr)
			if tc.typed {
				io.WriteString(ptmx, "hi\r")
				select {
				case <-read:
				case <-time.After(bound):
					t.Fatal("the server never had the line typed")
				}
				clock.Add(int64(tc.late))
				close(answer)
				if tc.answer {
					scr.expect(t, "HI")
				}
			}
			clock.Add(int64(tc.idle))
			close(closeNow)
			endedAtClose(t, code)
			scr.expect(t, "shout: "+addr)
			got, _, _ := strings.Cut(scr.expect(t, "\r\n"), ";")
			if got != tc.said {
				t.Errorf("the close said %q after %q, want %q", got, addr, tc.said)
			}
		})
	}
}

// With --reconnect, the idle time is the connection's own: one the
// server closes at once after a reconnection is not said to have been
// idle since the last reply on the connection before.
func TestTerminalIdleAfterReconnectIsTheNewConnections(t *testing.T) {
	var clock atomic.Int64
	client.SetClock(t, func() time.Time { return time.Unix(0, clock.Load()) })
	closeNow := make(chan struct{})
	var conns atomic.Int32
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		if conns.Add(1) > 1 {
			return // closed at once
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, strings.ToUpper(line))
		<-closeNow
	})
	dial := func() (net.Conn, error) {
		return client.Dial(context.Background(), endpoint.Endpoint{Network: "tcp", Address: addr}, bound)
	}
	c, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	ptmx, scr, _ := onPTY(t, &client.Terminal{Addr: addr, Timeout: bound, Reconnect: true, Dial: dial}, c, addr+"> ")
	io.WriteString(ptmx, "hi\r")
	scr.expect(t, "HI")
	clock.Add(int64(3 * time.Second))
	close(closeNow)
	for _, want := range []string{" closed the connection after 3s idle", " closed the connection"} {
		scr.expect(t, "shout: "+addr)
		if got, _, _ := strings.Cut(scr.expect(t, "\r\n"), ";"); got != want {
			t.Errorf("the close said %q after %q, want %q", got, addr, want)
		}
		scr.expect(t, "reconnected to "+addr)
	}
}

// tcpPrompt runs a Terminal on a pty over TCP to addr, once it shows its
// prompt.
func tcpPrompt(t *testing.T, addr string) (ptmx *os.File, scr *ptyScreen, code chan int) {
	t.Helper()
	c, err := client.Dial(context.Background(), endpoint.Endpoint{Network: "tcp", Address: addr}, bound)
	if err != nil {
		t.Fatal(err)
	}
	return onPTY(t, &client.Terminal{Addr: addr, Timeout: bound}, c, addr+"> ")
}

// endedAtClose checks that the session whose status comes on code ended
// at the server's close, with status 1.
func endedAtClose(t *testing.T, code <-chan int) {
	t.Helper()
	select {
	case got := <-code:
		if got != 1 {
			t.Errorf("exit status %d, want 1: the server closed", got)
		}
	case <-time.After(bound):
		t.Fatal("the session did not end at the server's close")
	}
}
