//go:build unix

package server_test

import (
	"net"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"shout/internal/shouttest"
	"shout/server"
)

// The memory a connection may cost the server, stated as tests. Clients
// here are bare non-blocking sockets, so that the test's side adds
// nothing to the Go heap or stacks being measured.

// idleBudget is what an idle connection may cost the server with the
// goroutine driver: its goroutine's stack and its connection and session
// state, no buffer. Measured at 3.4–5.5 KB: 0.8–1.4 KB of state and a
// stack of 2 KiB, or 4 KiB where the runtime grew it while the
// connection was busy (a garbage collection's assist) and could not
// shrink it again while it idles.
const idleBudget = 6 << 10

// loopIdleBudget is what an idle connection may cost with the event
// loops: its 256-byte struct, its address and its slot in each loop's
// table of descriptors; no goroutine, no buffer. Measured at 548 bytes.
const loopIdleBudget = 768

// blockedBudget is what a connection whose client sends and never reads
// may cost: 2×ReadSize (64 KiB), its read and that read's reply, plus its
// goroutine (whose stack a write grows to 4 KiB) and state. Measured at
// 67.7–69.6 KB; it had been 217–315 KB. With the event loops, the rest of
// one reply buffer and the input not yet transformed: measured 26 KB.
const blockedBudget = 64<<10 + 8<<10

func TestIdleConnectionMemory(t *testing.T) {
	skipUnderRace(t)
	const n = 1000
	addr := shouttest.Start(t, &server.Server{
		Logger:      discard(),
		IdleTimeout: time.Hour, WriteTimeout: time.Hour, // deadlines set, as shout serve does
	})
	var b0, b1 runtime.MemStats
	before := inUse()
	runtime.ReadMemStats(&b0)
	fds := make([]int, 0, n)
	t.Cleanup(func() { closeAll(fds) })
	for range n {
		fd := rawDial(t, addr)
		fds = append(fds, fd)
		rawExchange(t, fd, "hello egon 哈哈哈\n", "HELLO EGON 哈哈哈\n")
	}
	per := (inUse() - before) / n
	serving := connGoroutines()
	runtime.ReadMemStats(&b1)
	t.Logf("stack %d heap %d objects %d", int64(b1.StackInuse-b0.StackInuse)/n, int64(b1.HeapInuse-b0.HeapInuse)/n, int64(b1.HeapObjects-b0.HeapObjects)/n)
	t.Logf("%d idle connections: %d bytes each (heap and stacks), %d goroutines serving connections", n, per, serving)
	budget := int64(idleBudget)
	if engine(t) == server.EngineLoop {
		budget = loopIdleBudget
		if serving > 0 {
			t.Errorf("%d idle connections on the event loops, and %d goroutines serving connections", n, serving)
		}
	}
	if per > budget {
		t.Errorf("an idle connection costs %d bytes, over its budget of %d", per, budget)
	}
}

func TestBlockedClientMemory(t *testing.T) {
	skipUnderRace(t)
	const n = 100
	addr := shouttest.Start(t, &server.Server{
		Logger:       discard(),
		WriteTimeout: time.Hour, // armed, as shout serve has it, and holding nothing more
	})
	before := inUse()
	fds := make([]int, 0, n)
	t.Cleanup(func() { closeAll(fds) })
	msg := []byte(strings.Repeat("straße ﬁ ΐ hello egon 哈哈哈 ", 100)) // replies longer than requests
	for range n {
		fds = append(fds, rawDial(t, addr))
	}
	fillUntilBlocked(t, fds, msg)
	per := (inUse() - before) / n
	t.Logf("%d clients that do not read: %d bytes each (heap and stacks)", n, per)
	if per > blockedBudget {
		t.Errorf("a client that does not read costs %d bytes, over its budget of %d", per, blockedBudget)
	}
}

// connGoroutines counts the goroutines serving a connection of their own.
func connGoroutines() int {
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 2)
	return strings.Count(b.String(), "server.(*conn).serve(")
}

// skipUnderRace skips a memory budget under the race detector, which
// grows stacks and slows the server by an order of magnitude.
func skipUnderRace(t *testing.T) {
	if raceEnabled {
		t.Skip("memory budgets are measured without the race detector")
	}
}

// inUse is the heap and stack memory in use, after collecting garbage
// (twice, so that pooled buffers nobody holds are gone).
func inUse() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

// rawDial connects a non-blocking socket to addr, outside the Go runtime.
func rawDial(t *testing.T, addr string) int {
	t.Helper()
	return rawDialBuffer(t, addr, 16<<10)
}

// rawDialBuffer is rawDial with a receive buffer of rcvbuf bytes.
func rawDialBuffer(t *testing.T, addr string, rcvbuf int) int {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.CloseOnExec(fd)
	sa := &unix.SockaddrInet4{Port: p, Addr: [4]byte(net.ParseIP(host).To4())}
	// Small buffers: a client that does not read fills them, and the
	// server's, quickly.
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 16<<10)
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	return fd
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// wait waits for fd to be ready for events, for at most d; it reports
// whether it is.
func wait(t *testing.T, fd int, events int16, d time.Duration) bool {
	t.Helper()
	pfd := []unix.PollFd{{Fd: int32(fd), Events: events}}
	for {
		n, err := unix.Poll(pfd, int(d/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
}

func rawExchange(t *testing.T, fd int, send, want string) {
	t.Helper()
	if n, err := unix.Write(fd, []byte(send)); err != nil || n != len(send) {
		t.Fatalf("write: %d, %v", n, err)
	}
	got := make([]byte, 0, len(want))
	buf := make([]byte, len(want))
	for len(got) < len(want) {
		if !wait(t, fd, unix.POLLIN, bound) {
			t.Fatalf("no reply within %v", bound)
		}
		n, err := unix.Read(fd, buf[:len(want)-len(got)])
		if err == unix.EAGAIN {
			continue
		}
		if err != nil || n == 0 {
			t.Fatalf("read: %d, %v", n, err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// fillUntilBlocked writes msg to every fd until the server stops reading
// them: it is stuck writing replies the clients never read, and their send
// buffers stay full for blockedFor.
//
// The kernel lets each client's small send buffer drain into the
// server's receive buffer a little at a time, so filling 100 of them
// takes 1,000–1,800 rounds: 1.1–1.4 s alone, 1.9–2.2 s beside two busy
// loops (the whole test 2.8–4.1 s beside eight), and once more than
// 10 s, in go test -count=2 ./... beside the other packages' tests (why
// so long was not found). So it waits up to
// a minute before it says the server kept reading.
func fillUntilBlocked(t *testing.T, fds []int, msg []byte) {
	t.Helper()
	const blockedFor = 200 * time.Millisecond
	deadline := time.Now().Add(6 * bound)
	pfds := make([]unix.PollFd, len(fds))
	for i, fd := range fds {
		pfds[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLOUT}
	}
	for time.Now().Before(deadline) {
		for _, fd := range fds {
			for k := 0; k < 1024; k++ { // until its buffer is full, for now
				if _, err := unix.Write(fd, msg); err == unix.EAGAIN {
					break
				} else if err != nil {
					t.Fatalf("write: %v", err)
				}
			}
		}
		n, err := unix.Poll(pfds, int(blockedFor/time.Millisecond))
		if err != nil && err != unix.EINTR {
			t.Fatal(err)
		}
		if n == 0 {
			return // no client could write for blockedFor
		}
	}
	t.Fatal("the server kept reading from clients that do not read")
}

// engine is the driver a Server chooses for a TCP listener here.
func engine(t *testing.T) server.Engine {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e, err := new(server.Server).EngineFor(ln)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
