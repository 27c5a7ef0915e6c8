package bench_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"go.uber.org/goleak"
	"golang.org/x/text/cases"
	"golang.org/x/text/language"

	"shout/bench"
	"shout/client"
	"shout/endpoint"
	"shout/internal/certs"
	"shout/internal/shouttest"
	"shout/internal/sockerr"
	"shout/server"
)

// goroutineDriver is set while the tests run with the goroutine driver.
var goroutineDriver bool

// TestMain runs every test twice: with the event loops where the system
// has them, then with the goroutine driver, the second pass though the
// first failed; the exit code is the worse of the two. Fuzzing (-fuzz)
// runs once: the fuzz workers are processes of their own that run
// TestMain too, serve the coordinator in their first m.Run and would
// start a second one; FuzzReplyChecker picks the driver input by input.
//
// A test that sets none of bench's hooks (export_test.go, or the
// variables they set) and measures no memory calls t.Parallel: the
// package's tests mostly wait, on a run's window, a time-out or a slow
// stand-in server, and one after another they took over 5 minutes, near
// go test's default limit of 10 for a package. A hook is the whole
// package's: a test that sets one runs alone, as go test runs a test
// that does not call t.Parallel (OnScheduleCounts is by address, and
// may be used in parallel). As many run at a time as go test's
// -parallel says, by default the number of CPUs: more than that, on a
// busy machine, made replies come later than the short --timeout of
// many tests (8 at a time on 2 CPUs: 20 tests failed).
func TestMain(m *testing.M) {
	if os.Getenv(echoEnv) != "" {
		echoMain()
	}
	code := m.Run()
	if !fuzzing() {
		// Though the first pass failed: CI shows both drivers' failures
		// at once (TestBothPassesRunAfterAFailure).
		fmt.Println("again, with the goroutine driver")
		restore := bench.UseGoroutines()
		goroutineDriver = true
		code = max(code, m.Run())
		restore()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// fuzzing reports whether the test binary is fuzzing, as the coordinator
// (-test.fuzz) or one of its workers (-test.fuzzworker).
func fuzzing() bool {
	f, w := flag.Lookup("test.fuzz"), flag.Lookup("test.fuzzworker")
	return f != nil && f.Value.String() != "" || w != nil && w.Value.String() == "true"
}

// failPassEnv, when set, makes TestFailsWithTheLoops fail in the first
// pass, the event loops' (see TestBothPassesRunAfterAFailure).
const failPassEnv = "SHOUT_BENCH_TEST_FAIL_FIRST_PASS"

// TestMain's second pass runs though the first failed, and the binary
// fails: a failure with the event loops skipped the goroutine driver's
// pass, so CI showed one driver's failures at a time. (The test binary
// runs itself, with one test that fails in the first pass only.)
func TestBothPassesRunAfterAFailure(t *testing.T) {
	t.Parallel()
	if os.Getenv(failPassEnv) != "" {
		t.Skip("the binary run by this test")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFailsWithTheLoops$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), failPassEnv+"=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("the test binary ended with %v; want exit status 1:\n%s", err, out)
	}
	for _, want := range []string{"--- FAIL: TestFailsWithTheLoops", "again, with the goroutine driver", "--- PASS: TestFailsWithTheLoops"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
}

// TestFailsWithTheLoops fails in TestMain's first pass, and passes in
// the second, in the binary TestBothPassesRunAfterAFailure runs.
func TestFailsWithTheLoops(t *testing.T) {
	if os.Getenv(failPassEnv) == "" {
		t.Skip("run by TestBothPassesRunAfterAFailure")
	}
	if !goroutineDriver {
		t.Error("failing in the first pass, as asked")
	}
}

// quick is a short run: these tests check what is counted, not speed.
// A test that wants replies in it (Messages > 0, OK()) measures
// busyWindow instead; one that wants none lost or late, against a server
// that answers, makes the run bench.Patient, so that a busy machine's
// stall past Timeout gives up nothing (a wait longer only moved the line).
func quick(network, addr string) bench.Config {
	return bench.Config{
		Endpoint: endpoint.Endpoint{Network: network, Address: addr},
		Conns:    4, Depth: 4, Duration: 300 * time.Millisecond, Warmup: -1,
		Timeout: 2 * time.Second,
	}
}

// busyWindow is how long a run measures where a test wants replies in
// it: the window is fixed before the first message, and a machine busy
// enough (-race on a loaded 2-core runner) let 200 ms pass with no
// exchange in it, so that a run against a right server was not all right.
const busyWindow = time.Second

func run(t *testing.T, cfg bench.Config) *bench.Report {
	t.Helper()
	rep, err := bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// runMeasuring runs cfg until its window counted something (not
// Report.Empty: a reply, right or wrong, an error, a loss), at most five
// times: a window that a stall took whole (a busy machine, every test
// of the package running at once) counted nothing, and says nothing of
// the server either way.
func runMeasuring(t *testing.T, cfg bench.Config) *bench.Report {
	t.Helper()
	return runUntilMeasured(t, cfg, func(rep *bench.Report) bool { return !rep.Empty() })
}

// runUntilMeasured runs cfg again, at most five times in all, while
// measured says its run measured nothing to judge by.
func runUntilMeasured(t *testing.T, cfg bench.Config, measured func(*bench.Report) bool) *bench.Report {
	t.Helper()
	return runEachUntilMeasured(t, func() bench.Config { return cfg }, measured)
}

// runEachUntilMeasured is runUntilMeasured with each run's cfg made
// anew (a fresh server for a test whose server a run leaves changed).
func runEachUntilMeasured(t *testing.T, newCfg func() bench.Config, measured func(*bench.Report) bool) *bench.Report {
	t.Helper()
	var rep *bench.Report
	for try := range 5 {
		cfg := newCfg()
		if rep = run(t, cfg); measured(rep) {
			break
		}
		t.Logf("run %d of at most 5 measured nothing in its %v window", try+1, cfg.Duration)
	}
	return rep
}

// answered says whether a run's window counted a reply taken in time,
// right or wrong (a wrong one is a message too): a run whose every reply
// came past Timeout, or none in the window, after a stall, has no reply
// to judge by.
func answered(rep *bench.Report) bool { return rep.Messages > 0 || rep.Mismatches > 0 }

// runUntil runs cfg until ready closes, and ends it then as Ctrl-C
// does (cfg.Duration is a safety net): a test whose point is what the
// run counts before ready ends the run on that, not on a window that a
// busy machine's stall may outlast, leaving the count out of it.
func runUntil(t *testing.T, cfg bench.Config, ready <-chan struct{}) *bench.Report {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-ready:
			cancel()
		case <-ctx.Done():
		}
	}()
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestAgainstShout(t *testing.T) {
	addr := shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler)})
	for _, tc := range []struct {
		name string
		cfg  func(bench.Config) bench.Config
	}{
		{"tcp ascii", func(c bench.Config) bench.Config { return c }},
		{"tcp utf8 large", func(c bench.Config) bench.Config { c.Text, c.Size = "utf8", 5000; return c }},
		{"tcp open loop", func(c bench.Config) bench.Config { c.Rate = 4000; return c }},
		{"udp utf8", func(c bench.Config) bench.Config {
			c.Endpoint.Network, c.Text, c.Size = "udp", "utf8", 300
			return c
		}},
		// A rate low enough that a busy machine running the race detector
		// seldom overflows the server's socket buffer (and the drops the
		// kernel reports when it does are not shout's: see below).
		{"udp open loop", func(c bench.Config) bench.Config { c.Endpoint.Network, c.Rate = "udp", 1000; return c }},
		{"unix", func(c bench.Config) bench.Config { c.Endpoint = unixServer(t); return c }},
		{"unix open loop", func(c bench.Config) bench.Config { c.Endpoint, c.Rate = unixServer(t), 4000; return c }},
		// Messages too large to hold 64 distinct ones: 4 here, which the
		// rest repeat (see below).
		{"tcp large", func(c bench.Config) bench.Config { c.Text, c.Size = "utf8", 50000; return c }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "tcp large" {
				// Before the others start, which the bound would change:
				// a subtest that runs in parallel waits for this loop.
				defer bench.SetMessagesHeld(4 * 50000)()
			} else {
				t.Parallel()
			}
			cfg := bench.Patient(quick("tcp", addr))
			cfg.Duration = busyWindow
			// UDP datagrams go to a shout of their own, on a socket whose
			// drops are their own (see below).
			var drops *kernelDrops
			if strings.HasPrefix(tc.name, "udp") {
				pc := ownUDPShout(t)
				drops = dropsAt(pc)
				cfg.Endpoint.Address = pc.LocalAddr().String()
			}
			rep := run(t, tc.cfg(cfg))
			// An open loop sends what fell due in a stall at once: a
			// window's worth (1,000 datagrams) after a second's stall.
			// Where net.core.rmem_max is the kernel's default, the
			// server's socket holds about 500 of them, and on a busy
			// machine shout did not read them all in time (a socket of
			// 208 KiB, its sender started 1.5 s late: 9 runs in 10
			// dropped some, each lost). Those the kernel reports it
			// dropped (see kernelDrops) never reached shout, or bench:
			// they are lost (after the patient run's final wait, a
			// minute), and shout is not to blame; any other loss is.
			if served := checkLostToKernel(t, rep, drops); !served.OK() || rep.Messages == 0 {
				t.Fatalf("report %+v", rep)
			}
			if rep.LatencyUS.P50 <= 0 || rep.LatencyUS.Max < rep.LatencyUS.P99 || rep.LatencyUS.P99 < rep.LatencyUS.P50 {
				t.Errorf("latency %+v", rep.LatencyUS)
			}
			checkSentCounted(t, rep)
		})
	}
}

// checkSentCounted checks that rep says how many messages were sent
// while measuring, each of them answered, lost or not waited for (a
// server that cuts no reply short by closing), in the text, the page and
// the JSON: a report said how many were answered, and an engineer could
// not tell what share of those sent that was.
func checkSentCounted(t *testing.T, rep *bench.Report) {
	t.Helper()
	if got := rep.Messages + rep.Lost + rep.Unawaited; rep.Sent == 0 || rep.Sent != got {
		t.Errorf("%d sent while measuring; want %d answered + %d lost + %d not waited for = %d, and some", rep.Sent, rep.Messages, rep.Lost, rep.Unawaited, got)
	}
	text, page, line := writeEach(t, rep)
	for _, out := range []struct{ what, got, want string }{
		{"the text", text, fmt.Sprintf("  messages  %d answered of %d sent  (", rep.Messages, rep.Sent)},
		{"the page", page, fmt.Sprintf(`<td class="n">%d</td><td>answered of %d sent; `, rep.Messages, rep.Sent)},
		{"the JSON", line, fmt.Sprintf(`"sent":%d,`, rep.Sent)},
	} {
		if !strings.Contains(out.got, out.want) {
			t.Errorf("%s lacks %q:\n%s", out.what, out.want, text)
		}
	}
}

// ownUDPShout serves shout on a UDP socket of its own for the test, as
// shouttest.Start does (the receive buffer endpoint.Listen asks for).
func ownUDPShout(t *testing.T) net.PacketConn {
	eps, err := endpoint.Parse("127.0.0.1:0", "udp")
	if err != nil {
		t.Fatal(err)
	}
	_, pcs, err := endpoint.Listen(eps)
	if err != nil {
		t.Fatal(err)
	}
	shouttest.ServePacket(t, &server.Server{Logger: slog.New(slog.DiscardHandler)}, pcs[0])
	return pcs[0]
}

// unixServer serves shout on a Unix socket for the test.
func unixServer(t *testing.T) endpoint.Endpoint {
	path := t.TempDir() + "/shout.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &server.Server{Logger: slog.New(slog.DiscardHandler)}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return endpoint.Endpoint{Network: "unix", Address: path}
}

// streamServer is a stand-in TCP server that answers each read with f.
func streamServer(t *testing.T, readSize int, f func([]byte) []byte) string {
	return readingServer(t, readSize, f, nil)
}

// readingServer is streamServer, which calls read, if not nil, with the
// number (from 1) of each read on a connection, before it answers it.
func readingServer(t *testing.T, readSize int, f func([]byte) []byte, read func(k int)) string {
	return shouttest.StreamServer(t, func(c net.Conn) {
		buf := make([]byte, readSize)
		for k := 1; ; k++ {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if read != nil {
				read(k)
			}
			if _, err := c.Write(f(buf[:n])); err != nil {
				return
			}
		}
	})
}

// Servers that are subtly wrong, and what must catch them.
func TestCatchesWrongServers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		readSize int
		f        func([]byte) []byte
		text     string
		size     int
	}{
		// Go's bytes.ToUpper maps one rune to one: ß stays ß, not SS.
		{"per-rune uppercase", 4096, bytes.ToUpper, "utf8", 64},
		// Python's bytes.upper(): only a-z.
		{"ascii only", 4096, func(b []byte) []byte {
			out := bytes.Clone(b)
			for i, c := range out {
				if 'a' <= c && c <= 'z' {
					out[i] = c - 32
				}
			}
			return out
		}, "utf8", 64},
		// Decoding each read on its own mangles a character split across reads.
		{"split characters", 100, func(b []byte) []byte {
			return []byte(strings.ToUpper(strings.ToValidUTF8(string(b), "\uFFFD")))
		}, "utf8", 256},
		// The lesson's recv(1024) with a reply per read is fine; answering only
		// the first 1024 bytes of each read is not.
		{"truncates", 4096, func(b []byte) []byte { return bytes.ToUpper(b[:min(len(b), 1024)]) }, "ascii", 3000},
		// Every reply sent twice: the extra bytes answer no message.
		{"answers twice", 4096, func(b []byte) []byte { return append(bytes.ToUpper(b), bytes.ToUpper(b)...) }, "ascii", 64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// again closes as the server reads a connection a second time.
			again := make(chan struct{})
			var once sync.Once
			addr := readingServer(t, tc.readSize, tc.f, func(k int) {
				if k == 2 {
					once.Do(func() { close(again) })
				}
			})
			cfg := quick("tcp", addr)
			cfg.Text, cfg.Size = tc.text, tc.size
			// Short, as a reply cut or without its newline waits for it,
			// but not too short to connect in: it bounds connecting too,
			// and 200 ms once did not on a busy machine.
			cfg.Timeout = time.Second
			var rep *bench.Report
			if tc.name == "answers twice" {
				// Until the server reads a connection again, --duration
				// 10 s a bound: the first replies are right, and what
				// their copies answer was sent after them. A window that
				// a stall ended before the next send (the server's first
				// write held 400 ms, as a stall holds it) took the copies
				// for strays after it, in no count: a wrong server
				// passed. Sent on in the window, the next messages get
				// the copies, wrong, whenever they come.
				cfg.Duration = bound
				rep = runUntil(t, cfg, again)
			} else {
				// Every reply is wrong: a window that counted anything
				// shows it. (A stall may take one whole.)
				rep = runMeasuring(t, cfg)
			}
			if rep.OK() {
				t.Fatalf("a wrong server passed: %+v", rep)
			}
			if rep.FirstMismatch == "" && rep.FirstError == "" {
				t.Errorf("no first mismatch or error shown: %+v", rep)
			}
		})
	}
	// The same per-rune server is right for mode simple with no ß in sight.
	// Patient: a busy machine made 4 replies later than the 2 s timeout.
	addr := streamServer(t, 4096, bytes.ToUpper)
	cfg := bench.Patient(quick("tcp", addr))
	cfg.Mode = "simple"
	cfg.Text = "utf8"
	cfg.Duration = busyWindow
	if rep := run(t, cfg); !rep.OK() {
		t.Errorf("mode simple against a per-rune server: %+v", rep)
	}
}

// A server that answers every message as another mode would (an echo
// server: socat, fortio tcp-echo; Python's bytes.upper()) fails every
// reply; the first wrong reply names that mode, so that a user who meant
// to bench such a server knows the setting, and one who did not knows
// what the server does. A reply that is no mode's names none. The setting
// is the Config field, Mode, unless Report.NameSettings names it otherwise
// (shout bench's --mode): a program using bench has no flag of shout's.
func TestFirstMismatchNamesTheModeItIs(t *testing.T) {
	t.Parallel()
	asciiOnly := func(b []byte) []byte {
		out := bytes.Clone(b)
		for i, c := range out {
			if 'a' <= c && c <= 'z' {
				out[i] = c - 32
			}
		}
		return out
	}
	shout := shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler)})
	for _, tc := range []struct {
		name, network, addr, mode, want string
		fieldName                       func(string) string
	}{
		{"echo", "tcp", streamServer(t, 4096, bytes.Clone), "", "Mode echo", nil},
		{"ascii only", "tcp", streamServer(t, 4096, asciiOnly), "", "Mode ascii", nil},
		{"per rune", "tcp", streamServer(t, 4096, bytes.ToUpper), "", "Mode simple", nil},
		{"upper, benched as echo", "tcp", shout, "echo", "Mode upper", nil},
		{"udp echo", "udp", shouttest.PacketServer(t, func(_ int, b []byte) [][]byte { return [][]byte{b} }), "", "Mode echo", nil},
		{"no mode's", "tcp", streamServer(t, 4096, func(b []byte) []byte { return append([]byte("X"), bytes.ToUpper(b)...) }), "", "", nil},
		{"echo, by a flag", "tcp", streamServer(t, 4096, bytes.Clone), "", "--mode echo", func(f string) string { return "--" + strings.ToLower(f) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := quick(tc.network, tc.addr)
			cfg.Text, cfg.Mode, cfg.Depth, cfg.Timeout = "utf8", tc.mode, 1, time.Second
			// A run with no reply in time (a stall past Timeout: "Lost:2",
			// no message) has no reply to name a mode by: run again.
			rep := runUntilMeasured(t, cfg, answered)
			rep.NameSettings(tc.fieldName)
			if rep.OK() || rep.FirstMismatch == "" {
				t.Fatalf("no wrong reply: %+v", rep)
			}
			named := regexp.MustCompile(`(--mode|Mode) \w+`).FindString(rep.FirstMismatch)
			if named != tc.want {
				t.Errorf("first wrong reply names %q, want %q: %s", named, tc.want, rep.FirstMismatch)
			}
			// The wrong after the first are that mode's replies, not a
			// stream out of step: the report guessed a newline cut or
			// added, for an echo server, beside the mode it named.
			if rep.MismatchesAfter == 0 {
				return
			}
			var text, page strings.Builder
			rep.WriteText(&text)
			if err := rep.WriteHTML(&page); err != nil {
				t.Fatal(err)
			}
			for _, out := range []string{text.String(), page.String()} {
				if guessed := strings.Contains(out, "cut or added a newline"); guessed != (tc.want == "") {
					t.Errorf("the report guesses a newline cut or added: %v, want %v (first wrong reply names %q):\n%s", guessed, tc.want == "", named, text.String())
				}
			}
		})
	}
}

// A server that answers nothing for one message puts a stream out of
// step as one that drops a newline does: each later reply is compared
// with the message before its own. The report guessed a newline cut or
// added alone, and a reader of a server that skipped a reply looked for
// a newline bug (TCP, open loop, one reply of 3,000 skipped: "749 wrong
// (748 of them after an earlier wrong reply ...: if the server cut or
// added a newline, ...)"). The text and the page name a skipped reply.
func TestOutOfStepNamesASkippedReply(t *testing.T) {
	rep := &bench.Report{Settings: bench.Settings{Network: "tcp", Rate: 2000}, Messages: 3998, Mismatches: 749, MismatchesAfter: 748,
		FirstMismatch: `got "B\n", want "A\n" (first difference at byte 0)`}
	text, page, _ := writeEach(t, rep)
	const want = "if the server cut or added a newline, or answered nothing to a message, right replies compared with the wrong message"
	if !strings.Contains(text, want) || !strings.Contains(page, want) {
		t.Errorf("want the text and the page to say %q; the text:\n%s", want, text)
	}
}

// A server that drops one newline, once, on one connection, puts that
// stream out of step: every later reply on it is compared with the
// message before its own. The report still counts them wrong (it cannot
// know what the server did), but says how many came after the first.
func TestWrongAfterAnEarlierWrongReply(t *testing.T) {
	t.Parallel()
	var dropped atomic.Bool
	addr := streamServer(t, 4096, func(b []byte) []byte {
		out := bytes.ToUpper(b)
		if k := bytes.IndexByte(out, '\n'); k >= 0 && dropped.CompareAndSwap(false, true) {
			out = append(out[:k:k], out[k+1:]...)
		}
		return out
	})
	// A right server, for the count when no reply is wrong.
	right := streamServer(t, 4096, bytes.ToUpper)
	cfg := quick("tcp", addr)
	cfg.Text = "ascii" // which bytes.ToUpper gets right
	cfg.Timeout = 500 * time.Millisecond
	rep := run(t, cfg)
	if !dropped.Load() {
		t.Fatal("the server dropped no newline")
	}
	// Every wrong reply but the first on the one connection came after it.
	// (It has no second if the run ended first, or the connection failed.)
	if rep.Mismatches == 0 || rep.MismatchesAfter != rep.Mismatches-1 {
		t.Errorf("%d wrong, %d of them after an earlier one on the same connection; want all but one", rep.Mismatches, rep.MismatchesAfter)
	}
	var text strings.Builder
	rep.WriteText(&text)
	if rep.MismatchesAfter > 0 && !strings.Contains(text.String(), fmt.Sprintf("(%d of them after an earlier wrong reply on the same connection", rep.MismatchesAfter)) {
		t.Errorf("the report does not say how many came after an earlier wrong reply:\n%s", text.String())
	}
	cfg.Endpoint.Address = right
	if rep := run(t, cfg); rep.Mismatches != 0 || rep.MismatchesAfter != 0 {
		t.Errorf("a right server: %d wrong, %d after", rep.Mismatches, rep.MismatchesAfter)
	}
	// A server that gets one reply in ten wrong, in step: right replies
	// between its wrong ones show that. They were all counted as after
	// the first, "perhaps only out of step". The run ends once the server
	// has answered 30 messages, not with a window of 300 ms: a busy
	// machine (the whole suite under -race) exchanged fewer than ten in
	// it, none of them wrong.
	var n atomic.Int64
	enough := make(chan struct{})
	cfg.Endpoint.Address = streamServer(t, 4096, func(b []byte) []byte {
		out := bytes.ToUpper(b)
		k := n.Add(1)
		if k%10 == 0 && len(out) > 1 {
			out[0] = 'x' // the same length, the newline kept
		}
		if k == 30 {
			close(enough)
		}
		return out
	})
	cfg.Conns, cfg.Depth = 1, 1 // a read, a message
	cfg.Duration = time.Minute
	rep = runUntil(t, cfg, enough)
	if rep.Mismatches == 0 || rep.MismatchesAfter != 0 {
		t.Errorf("one reply in ten wrong: %d wrong, %d after an earlier one, of %d; want some, and none after", rep.Mismatches, rep.MismatchesAfter, rep.Messages)
	}
}

// udpServer is a stand-in UDP server; answer returns the replies to send
// for datagram number n, given its uppercase.
func udpServer(t *testing.T, answer func(n int, b []byte) [][]byte) string {
	addr, _ := udpStandIn(t, answer)
	return addr
}

func TestUDPLossDuplicatesReordering(t *testing.T) {
	t.Parallel()
	var held []byte
	var mu sync.Mutex
	tests := []struct {
		name    string
		answer  func(n int, b []byte) [][]byte
		check   func(r *bench.Report) bool
		timeout time.Duration // (2 s: every reply comes, and the run is patient)
	}{
		{"drops every tenth", func(n int, b []byte) [][]byte {
			if n%10 == 9 {
				return nil
			}
			return [][]byte{b}
		}, func(r *bench.Report) bool { return r.Lost > 0 && r.Mismatches == 0 }, 200 * time.Millisecond},
		{"answers twice", func(n int, b []byte) [][]byte { return [][]byte{b, b} },
			func(r *bench.Report) bool { return r.Duplicates > 0 && r.Lost == 0 }, 2 * time.Second},
		// A wrong reply sent twice is one wrong reply and one duplicate:
		// it was counted wrong twice.
		{"answers wrong, twice", func(n int, b []byte) [][]byte {
			w := bytes.Clone(b)
			w[len(w)-1] = '!'
			return [][]byte{w, w}
		}, func(r *bench.Report) bool {
			return r.Messages > 0 && r.Duplicates > 0 && r.Mismatches == r.Messages && r.Lost == 0
		}, 2 * time.Second},
		{"swaps pairs", func(n int, b []byte) [][]byte {
			mu.Lock()
			defer mu.Unlock()
			if held == nil {
				held = bytes.Clone(b)
				return nil
			}
			out := [][]byte{b, held}
			held = nil
			return out
		}, func(r *bench.Report) bool { return r.Reordered > 0 }, 200 * time.Millisecond},
		// A reply that names a datagram never sent (its number ahead of
		// every one sent) answers none: wrong, as one with no number is.
		// It was passed over without a count.
		{"names one never sent", func(n int, b []byte) [][]byte {
			if n%10 == 9 {
				return [][]byte{append([]byte("00000000009999999999"), b[20:]...)}
			}
			return [][]byte{b}
		}, func(r *bench.Report) bool {
			return r.Mismatches > 0 && r.Lost > 0 && strings.Contains(r.FirstMismatch, "of a datagram sent")
		}, 200 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // (held is "swaps pairs"' alone)
			addr, drops := udpStandIn(t, tc.answer)
			cfg := quick("udp", addr)
			cfg.Conns = 1
			cfg.Text = "ascii" // the stand-in's bytes.ToUpper is right on it
			// Dropped and held replies must expire well within the run;
			// where every reply comes, none may be lost, and a busy
			// machine once kept some past 200 ms: that run is patient,
			// so that a stall past Timeout loses none either.
			cfg.Timeout = tc.timeout
			if tc.timeout == 2*time.Second {
				cfg = bench.Patient(cfg)
			}
			cfg.Duration = time.Second
			rep := run(t, drops.counting(cfg))
			// Where none may be lost, what the kernel dropped is, and
			// no more (see kernelDrops): judged without those, all that
			// bench's socket dropped among them, though the duplicates
			// keep DroppedByBench from counting it.
			if tc.timeout == 2*time.Second {
				rep = checkLostToKernel(t, rep, drops)
			}
			if !tc.check(rep) {
				t.Errorf("report %+v", rep)
			}
		})
	}
}

// A second reply to a datagram is checked as the first is: a wrong one
// after a right one is wrong, not only a duplicate. It was passed over
// unchecked, and a server whose every second reply was wrong was "all
// right".
func TestUDPWrongDuplicate(t *testing.T) {
	t.Parallel()
	addr := udpServer(t, func(n int, b []byte) [][]byte {
		if n > 0 {
			return [][]byte{b}
		}
		w := bytes.Clone(b)
		w[len(w)-2] = '!'
		return [][]byte{b, w} // right, then wrong under the same number
	})
	cfg := quick("udp", addr)
	cfg.Conns, cfg.Depth, cfg.Duration = 1, 1, busyWindow
	cfg.Text = "ascii" // the stand-in's bytes.ToUpper is right on it
	rep := run(t, cfg)
	// One datagram in flight: the wrong second reply to the first came
	// before the reply to the second.
	if rep.Messages < 2 {
		t.Fatalf("%d messages, want at least 2: %+v", rep.Messages, rep)
	}
	if rep.Mismatches != 1 || rep.Duplicates != 1 || rep.OK() {
		t.Errorf("%d wrong, %d duplicated, OK() = %v; want 1, 1, false: %+v", rep.Mismatches, rep.Duplicates, rep.OK(), rep)
	}
	if !strings.Contains(rep.FirstMismatch, "!") {
		t.Errorf("first wrong reply %q, want the second reply", rep.FirstMismatch)
	}
}

// A datagram whose expected reply is longer than a datagram carries
// ("ß" is "SS") is refused before the run: no server could answer it,
// and every one was counted lost, "no reply came back".
func TestUDPReplyLargerThanADatagram(t *testing.T) {
	defer bench.SetMessagesHeld(2 * bench.MaxDatagram)() // two distinct messages: 64 of 64 KB took 20 s under -race
	addr, drops := udpStandIn(t, func(_ int, b []byte) [][]byte { return [][]byte{b} })
	cfg := bench.Patient(quick("udp", addr))
	cfg.Conns, cfg.Depth, cfg.Size = 1, 1, bench.MaxDatagram
	// Timeout is no bound on the server's speed: the run waits only for
	// the one datagram in flight at the end, which a busy machine
	// answered later than 200 ms ("1 lost"). (And it is patient.)
	cfg.Duration, cfg.Timeout = busyWindow, 10*time.Second
	rep, err := bench.Run(context.Background(), cfg) // utf8, upper: longer replies
	if err == nil || !strings.Contains(err.Error(), "more than a UDP datagram carries") {
		t.Errorf("got %v, %+v; want it refused", err, rep)
	}
	cfg.Text = "ascii" // replies as long as the datagrams: they fit
	if rep := run(t, cfg); !checkLostToKernel(t, rep, drops).OK() {
		t.Errorf("ascii: %+v", rep)
	}
}

// Over IPv6 a datagram carries 20 bytes more than over IPv4: a Size up
// to that is run, and one past it is refused naming IPv6's most. Every
// Size past IPv4's most was refused, as more than a datagram carries.
// An IPv4-mapped address is reached over IPv4, and has its limit.
func TestUDPSizeOverIPv6(t *testing.T) {
	defer bench.SetMessagesHeld(2 * bench.MaxDatagram6)() // two distinct messages, as above
	pc := shouttest.PacketServerIPv6Conn(t, func(_ int, b []byte) [][]byte { return [][]byte{bytes.ToUpper(b)} })
	drops := dropsAt(pc)
	cfg := bench.Patient(quick("udp", pc.LocalAddr().String()))
	cfg.Conns, cfg.Depth, cfg.Size, cfg.Text = 1, 1, bench.MaxDatagram6, "ascii"
	cfg.Duration, cfg.Timeout = busyWindow, 2*time.Second
	if rep := run(t, cfg); !checkLostToKernel(t, rep, drops).OK() {
		t.Errorf("Size %d over IPv6: %+v", cfg.Size, rep)
	}
	cfg.Size++
	if _, err := bench.Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "more than a UDP datagram carries (65527 bytes)") {
		t.Errorf("Size %d over IPv6: %v; want it refused, naming 65527 bytes", cfg.Size, err)
	}
	cfg.Size, cfg.Text = bench.MaxDatagram6, "utf8" // longer replies
	if err := bench.CheckReplies(cfg); err == nil || !strings.Contains(err.Error(), "more than a UDP datagram carries (65527)") {
		t.Errorf("utf8 at Size %d over IPv6: %v; want the replies too large for 65527 bytes", cfg.Size, err)
	}
	for a, want := range map[string]int{"[::1]:9": bench.MaxDatagram6, "[::ffff:127.0.0.1]:9": bench.MaxDatagram, "127.0.0.1:9": bench.MaxDatagram, "localhost:9": bench.MaxDatagram} {
		if got := bench.MaxPayload(endpoint.Endpoint{Network: "udp", Address: a}); got != want {
			t.Errorf("MaxPayload(%s) = %d, want %d", a, got, want)
		}
	}
}

// Ascii text is the remedy named only where it is one: under tr or az
// ASCII's "i" is "İ", two bytes, so an ascii datagram's reply is longer
// too. It was named there, and taking it met the same refusal.
func TestUDPReplyLargerThanADatagramRemedy(t *testing.T) {
	defer bench.SetMessagesHeld(2 * bench.MaxDatagram)() // two distinct messages: 64 of 64 KB took 20 s under -race
	for _, tc := range []struct {
		text, lang string
		ascii      bool // ascii text named as the remedy
	}{
		{"utf8", "", true},
		{"utf8", "tr", false},
		{"ascii", "tr", false},
		{"ascii", "az", false},
	} {
		cfg := quick("udp", "127.0.0.1:9") // refused before it sends
		cfg.Conns, cfg.Depth, cfg.Size = 1, 1, bench.MaxDatagram
		cfg.Text, cfg.Lang = tc.text, tc.lang
		_, err := bench.Run(context.Background(), cfg)
		var large *bench.ReplyTooLargeError
		if !errors.As(err, &large) {
			t.Errorf("%s, lang %q: got %v, want a ReplyTooLargeError", tc.text, tc.lang, err)
			continue
		}
		if large.ASCIIFits != tc.ascii || strings.Contains(err.Error(), "ascii text") != tc.ascii {
			t.Errorf("%s, lang %q: %v (ASCIIFits %v); want ascii text named as the remedy: %v", tc.text, tc.lang, err, large.ASCIIFits, tc.ascii)
		}
		if cerr := bench.CheckReplies(cfg); cerr == nil || cerr.Error() != err.Error() {
			t.Errorf("%s, lang %q: CheckReplies %v, want Run's %v", tc.text, tc.lang, cerr, err)
		}
		if tc.lang != "" && !strings.Contains(err.Error(), "mode upper ("+tc.lang+")") {
			t.Errorf("%s, lang %q: %v; want the language named with the mode", tc.text, tc.lang, err)
		}
	}
}

// A reply that comes after its datagram was counted lost and left the
// ring is checked as one still in the ring is: late, and wrong if it is.
// Its body was not looked at.
func TestUDPLateWrongReplyOutOfTheRing(t *testing.T) {
	defer bench.SetUDPRing(4)()
	var first []byte
	// The run ends once datagram 40 came, the late reply 30 datagrams
	// behind it, not with a window of 300 ms: a busy machine (-race)
	// sent one datagram in it.
	enough := make(chan struct{})
	addr := udpServer(t, func(n int, b []byte) [][]byte {
		switch {
		case n == 0: // held: bench sends the next once it counted it lost
			first = bytes.Clone(b)
			first[len(first)-2] = '!'
			return nil
		case n == 10: // datagram 0 left the ring of 4 when 4 was sent
			return [][]byte{first, b}
		case n == 40:
			close(enough)
		}
		return [][]byte{b}
	})
	cfg := quick("udp", addr)
	cfg.Conns, cfg.Depth = 1, 1
	cfg.Text = "ascii" // the stand-in's bytes.ToUpper is right on it
	cfg.Timeout, cfg.Duration = time.Millisecond, time.Minute
	rep := runUntil(t, cfg, enough)
	// Datagram 10 was sent: its reply came, or was lost, after the late one.
	if rep.Messages+rep.Lost < 11 {
		t.Fatalf("fewer than 11 datagrams: %+v", rep)
	}
	if rep.Late == 0 || rep.Mismatches != 1 || !strings.Contains(rep.FirstMismatch, "!") {
		t.Errorf("%d late, %d wrong (first %q); want at least 1 late, and the late one wrong", rep.Late, rep.Mismatches, rep.FirstMismatch)
	}
}

func TestUnreachable(t *testing.T) {
	addr := shouttest.Refusing(t)
	_, err := bench.Run(context.Background(), quick("tcp", addr))
	var ue *bench.UnreachableError
	if !errors.As(err, &ue) || err.Error() != "connect "+addr+": connection refused" {
		t.Errorf("got %v", err)
	}
}

// A UDP run whose every socket waits out the window for the replies to
// its warm-up datagrams, which never come (a server that answers nothing,
// or one past its --source-rate budget), sends nothing while measuring.
// The verdict says why: it said "no message was sent in the 100ms
// measured, too short for one exchange", of a window far longer than an
// exchange, and counted the warm-up's losses nowhere. So did a TCP run
// whose every connection waited for a warm-up message's reply (a proxy in
// between that took the messages and stalled, or cut a reply short and
// held the connection open).
func TestWarmupRepliesMissingNotWindowTooShort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ network, conn, msg string }{
		{"udp", "socket", "datagram"},
		{"tcp", "connection", "message"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			t.Parallel()
			var cfg bench.Config
			if tc.network == "udp" {
				cfg = quick("udp", udpServer(t, func(int, []byte) [][]byte { return nil }))
			} else {
				cfg = quick("tcp", shouttest.StreamServer(t, func(c net.Conn) { io.Copy(io.Discard, c) }))
			}
			cfg.Conns, cfg.Depth = 2, 1
			cfg.Warmup, cfg.Duration, cfg.Timeout = 300*time.Millisecond, 100*time.Millisecond, time.Second
			// Each connection (socket) sends one message, which nothing
			// answers, counted once. One sent late, in the window (a busy
			// machine), is measured and lost, which is another verdict: try
			// again, a few times. (Taken for that, a count of the warm-up's
			// in Lost too, or in none, was skipped.)
			lateOnly := func(rep *bench.Report) bool {
				return !rep.Empty() && rep.WarmupLost+rep.Lost+rep.Unawaited == 2
			}
			var rep *bench.Report
			for try := 1; try <= 5; try++ {
				if rep = run(t, cfg); !lateOnly(rep) {
					break
				}
				t.Logf("try %d: a %s was sent while measuring (%d lost), not what is tested", try, tc.msg, rep.Lost)
			}
			if lateOnly(rep) {
				t.Skipf("every try sent a %s while measuring: the machine is too busy for this test", tc.msg)
			}
			if rep.WarmupLost != 2 {
				t.Errorf("WarmupLost = %d, want 2 (one %s of each %s's warm-up)", rep.WarmupLost, tc.msg, tc.conn)
			}
			if rep.Lost != 0 || rep.Errors != 0 || rep.Unawaited != 0 {
				t.Errorf("Lost, Errors, Unawaited = %d, %d, %d; want 0: the warm-up's count in WarmupLost alone", rep.Lost, rep.Errors, rep.Unawaited)
			}
			var text strings.Builder
			rep.WriteText(&text)
			want := "  not all right: no message was sent in the 100ms measured: every " + tc.conn + " waited for the replies to its warm-up " + tc.msg + "s, and 2 replies never came within the timeout, 1s\n"
			if !strings.HasSuffix(text.String(), want) {
				t.Errorf("the report:\n%s\nwant it to end %q", text.String(), want)
			}
			if rep.OK() {
				t.Error("OK() = true")
			}
		})
	}
}

// An open loop sends as datagrams fall due, waiting for no reply: one
// whose window was too short for a datagram to fall due in it, against
// a server that answered none of the warm-up's, was said to have
// "waited for the replies to its warm-up datagrams", which no socket of
// it does. At 5 a second on one socket, due every 200 ms from the
// warm-up's start, none falls due in the 50 ms window from 500 ms.
func TestOpenLoopWarmupRepliesMissingWindowTooShort(t *testing.T) {
	t.Parallel()
	addr := udpServer(t, func(int, []byte) [][]byte { return nil })
	cfg := quick("udp", addr)
	cfg.Conns, cfg.Depth, cfg.Rate = 1, 1, 5
	cfg.Warmup, cfg.Duration, cfg.Timeout = 500*time.Millisecond, 50*time.Millisecond, 200*time.Millisecond
	rep := run(t, cfg)
	if !rep.Empty() {
		t.Fatalf("a datagram fell due in the window: %d lost, %d unsent", rep.Lost, rep.Unsent)
	}
	if rep.WarmupLost == 0 {
		t.Errorf("WarmupLost = 0, want the warm-up's datagrams")
	}
	var text strings.Builder
	rep.WriteText(&text)
	const want = "  not all right: no message was sent in the 50ms measured, too short for one exchange\n"
	if !strings.HasSuffix(text.String(), want) {
		t.Errorf("the report:\n%s\nwant it to end %q", text.String(), want)
	}
}

// A run interrupted in the warm-up measured nothing: its sockets did not
// wait out a window for the replies to their warm-up datagrams, though
// the server answered none (given up in the wait at the end). It was
// said they had.
func TestInterruptedInWarmupNotWaitedForWarmupReplies(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := udpServer(t, func(int, []byte) [][]byte {
		cancel() // a warm-up datagram came: Ctrl-C
		return nil
	})
	cfg := quick("udp", addr)
	cfg.Conns, cfg.Depth = 1, 1
	cfg.Warmup, cfg.Duration, cfg.Timeout = time.Minute, time.Second, 100*time.Millisecond
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Interrupted || !rep.Empty() {
		t.Fatalf("interrupted %v, empty %v: want an interrupted run that measured nothing", rep.Interrupted, rep.Empty())
	}
	if rep.WarmupLost == 0 {
		t.Error("WarmupLost = 0, want the warm-up's datagram given up in the wait at the end")
	}
	var text strings.Builder
	rep.WriteText(&text)
	if strings.Contains(text.String(), "waited for the replies to its warm-up datagrams") {
		t.Errorf("the report of a run interrupted in the warm-up:\n%s", text.String())
	}
}

// A run shorter than the timeout against a server that never answers, or
// answers too little, must not pass: the replies still owed at the end
// are waited for, then counted lost, and a run with no reply fails.
func TestOwedRepliesAreLost(t *testing.T) {
	t.Parallel()
	silentTCP := func(t *testing.T) string {
		return shouttest.StreamServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	}
	shortTCP := func(t *testing.T) string {
		return streamServer(t, 4096, func(b []byte) []byte { return bytes.ToUpper(b[:len(b)/2]) })
	}
	// hangTCP reads a message to its end and neither answers nor closes.
	hangTCP := func(t *testing.T) string {
		release := make(chan struct{})
		addr := shouttest.StreamServer(t, func(c net.Conn) { io.Copy(io.Discard, c); <-release })
		t.Cleanup(func() { close(release) }) // before the server's own
		return addr
	}
	silentUDP := func(t *testing.T) string { return udpServer(t, func(int, []byte) [][]byte { return nil }) }
	shortUDP := func(t *testing.T) string {
		return udpServer(t, func(_ int, b []byte) [][]byte { return [][]byte{b[:len(b)/2]} })
	}
	for _, tc := range []struct {
		name, network string
		server        func(*testing.T) string
		lost          int64 // -1: any
		churn         bool
	}{
		// Two connections, one message each in flight, never answered.
		{"tcp silent", "tcp", silentTCP, 2, false},
		{"tcp short", "tcp", shortTCP, -1, false},
		{"udp silent", "udp", silentUDP, 2, false},
		{"udp short", "udp", shortUDP, -1, false},
		// Two connections at once, each made while measuring, whose
		// exchange times out only after the window.
		{"churn silent", "tcp", hangTCP, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := quick(tc.network, tc.server(t))
			cfg.Conns, cfg.Depth, cfg.Churn = 2, 1, tc.churn
			cfg.Duration, cfg.Timeout = busyWindow, 2*busyWindow // (each sends one in the window)
			rep := run(t, cfg)
			if rep.OK() {
				t.Errorf("OK() = true for %+v", rep)
			}
			if rep.Lost+rep.Mismatches == 0 {
				t.Errorf("nothing counted lost or wrong: %+v", rep)
			}
			if tc.lost >= 0 && rep.Lost != tc.lost {
				t.Errorf("lost %d, want %d", rep.Lost, tc.lost)
			}
			var out bytes.Buffer
			rep.WriteText(&out)
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if last := lines[len(lines)-1]; !strings.HasPrefix(last, "  not all right: ") {
				t.Errorf("last line %q, want it to say not all right; report:\n%s", last, out.String())
			}
		})
	}
}

// A reply cut short by the server closing the connection is wrong, shown
// with where it ends, not an error that reads like a time-out; and the
// report says the server closed it there (it said "first difference at
// byte 0" of a reply never begun, which reads as a wrong first byte).
func TestReplyEndsEarly(t *testing.T) {
	for _, tc := range []struct {
		name   string
		keep   func(n int) int // bytes of the reply sent before closing
		spoil  bool            // the last byte sent is wrong too
		offset string
	}{
		{"half a reply", func(n int) int { return n / 2 }, false, "(the server closed the connection after byte 32 of the reply)"},
		{"no reply", func(int) int { return 0 }, false, "(the server closed the connection before the reply began)"},
		// A message cut inside a character, its lead byte answered as it
		// is (as shout does at an end of file): the close was not said.
		{"half a reply, its last byte wrong", func(n int) int { return n / 2 }, true, "(first difference at byte 31, and the server closed the connection after byte 32 of the reply)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := shouttest.StreamServer(t, func(c net.Conn) {
				buf := make([]byte, 64)
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				reply := bytes.ToUpper(buf[:tc.keep(len(buf))])
				if tc.spoil {
					reply[len(reply)-1] = 0xcf // in no ASCII message
				}
				c.Write(reply)
			})
			cfg := quick("tcp", addr)
			cfg.Conns, cfg.Depth, cfg.Size = 1, 1, 64
			cfg.Text = "ascii" // the stand-in's bytes.ToUpper is right on it
			cfg.Duration, cfg.Timeout = busyWindow, 2*time.Second
			rep := run(t, cfg)
			if rep.Mismatches != 1 || rep.Errors != 0 || rep.Lost != 0 {
				t.Errorf("got %d wrong, %d errors, %d lost; want 1, 0, 0: %+v", rep.Mismatches, rep.Errors, rep.Lost, rep)
			}
			if !strings.Contains(rep.FirstMismatch, tc.offset) || !strings.Contains(rep.FirstMismatch, "want ") {
				t.Errorf("first wrong reply %q, want got, want and %q", rep.FirstMismatch, tc.offset)
			}
		})
	}
}

// Wrong replies and messages are counted over the same window: the
// messages sent while measuring. Against a server whose every reply is
// wrong, a run with a warm-up counts each measured reply once, as a
// message and as wrong, and none from the warm-up.
func TestWarmupCountedLikeMessages(t *testing.T) {
	t.Parallel()
	echoTCP := func(t *testing.T) string { return streamServer(t, 4096, bytes.Clone) }
	echoUDP := func(t *testing.T) string {
		return shouttest.PacketServer(t, func(_ int, b []byte) [][]byte { return [][]byte{b} })
	}
	for _, tc := range []struct {
		network string
		server  func(*testing.T) string
	}{{"tcp", echoTCP}, {"udp", echoUDP}} {
		t.Run(tc.network, func(t *testing.T) {
			t.Parallel()
			// Patient: a stall past Timeout made a measured reply late,
			// and wrong all the same, in no message (3,012 messages,
			// 3,024 wrong, under injected stalls of a second).
			cfg := bench.Patient(quick(tc.network, tc.server(t)))
			// (A second measured: the window is a second of the clock's,
			// fixed before the first message, and a machine busy enough
			// may let 200 ms pass with no exchange in it.)
			cfg.Warmup, cfg.Duration = 200*time.Millisecond, time.Second
			// (Run again if the second too passed with no exchange in
			// it: a stall as long, 0 messages and 0 wrong.)
			rep := runUntilMeasured(t, cfg, answered)
			if rep.Messages == 0 || rep.Mismatches != rep.Messages {
				t.Errorf("%d messages, %d wrong; want as many wrong as messages, not 0", rep.Messages, rep.Mismatches)
			}
			var out bytes.Buffer
			rep.WriteText(&out)
			if !strings.Contains(out.String(), "every count is of messages sent, and errors met, while measuring") {
				t.Errorf("the report does not say what it counts:\n%s", out.String())
			}
		})
	}
}

// A wrong reply in the warm-up, which no measured count takes (WarmupWrong
// does), makes no measured one "after an earlier wrong reply": the first
// measured is the first the report can show. With a server that answers
// every message wrong, every wrong reply on the one connection came after
// it, the first measured included, and the report said so of an earlier
// one it showed nowhere.
func TestWarmupWrongReplyIsNoEarlierOne(t *testing.T) {
	t.Parallel()
	cfg := bench.Patient(quick("tcp", streamServer(t, 4096, bytes.Clone))) // an echo: each reply wrong
	cfg.Conns, cfg.Depth = 1, 1
	cfg.Warmup, cfg.Duration = 300*time.Millisecond, busyWindow
	rep := runUntilMeasured(t, cfg, answered)
	if rep.Mismatches == 0 || rep.MismatchesAfter != rep.Mismatches-1 {
		t.Errorf("%d wrong, %d of them after an earlier wrong one on the connection; want all but the first measured", rep.Mismatches, rep.MismatchesAfter)
	}
	// The warm-up's are counted apart, the first shown as the measured
	// first is, naming the mode the server answers in.
	if rep.WarmupWrong == 0 || !strings.Contains(rep.FirstWarmupWrong, "Mode echo") {
		t.Errorf("%d wrong in the warm-up, the first %q; want some, the first naming Mode echo", rep.WarmupWrong, rep.FirstWarmupWrong)
	}
}

// Connections that fail in the warm-up are load not measured: shout
// serve --max-conns 2 under bench --conns 5 closed 3 of them, and the run
// measured 2, exited 0 and said "every reply checked: all right". It is
// not all right, and the report says how many were measured of how many
// asked for, in text, JSON and HTML.
func TestWarmupLossIsLessLoad(t *testing.T) {
	t.Parallel()
	// A stall as long as the window after the warm-up left it without a
	// reply ("0 messages"), nothing to judge the two measured by: run
	// again, on a server of its own (the last run's two connections may
	// be open yet at this one's, all five refused).
	rep := runEachUntilMeasured(t, func() bench.Config {
		addr := shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler), MaxConns: 2})
		cfg := bench.Patient(quick("tcp", addr))
		cfg.Conns, cfg.Depth = 5, 1
		cfg.Warmup, cfg.Duration = time.Second, busyWindow
		return cfg
	}, answered)
	if rep.OK() || rep.Unmeasured != 3 || rep.Errors != 0 || rep.Messages == 0 {
		t.Errorf("OK %v, %d unmeasured, %d errors, %d messages; want not all right, 3 unmeasured, 0 errors, replies", rep.OK(), rep.Unmeasured, rep.Errors, rep.Messages)
	}
	const want = "2 of 5 connections measured, 3 failed in the warm-up"
	var text, page strings.Builder
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "not all right: "+want) || !strings.Contains(text.String(), "load      "+want) {
		t.Errorf("the text report does not say %q:\n%s", want, text.String())
	}
	line, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(line, []byte(`"unmeasured":3`)) || !bytes.Contains(line, []byte(`"ok":false`)) {
		t.Errorf("JSON without unmeasured 3 and ok false: %s", line)
	}
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), want) {
		t.Errorf("the HTML page does not say %q", want)
	}
}

// A connection that fails in the warm-up, just as the run turns to
// measuring, is among those not measured: its error was counted the
// warm-up's, and the connections measured were counted before it had
// ended, so that it was in neither (0 unmeasured, 0 errors: all right,
// with one connection of two gone).
func TestUnmeasuredFailsAtTheTurn(t *testing.T) {
	began := make(chan struct{})
	t.Cleanup(bench.OnMeasuringBegan(func() { close(began) }, func() {
		select { // (the error counted; the connection not yet ended)
		case <-began:
		case <-time.After(10 * time.Second):
			t.Error("measuring did not begin")
		}
	}))
	addr := resetFirstServer(t)
	cfg := quick("tcp", addr)
	cfg.Conns, cfg.Depth = 2, 1
	cfg.Warmup, cfg.Duration = 300*time.Millisecond, 200*time.Millisecond
	rep := run(t, cfg)
	if rep.Errors != 0 || rep.WarmupErrors != 1 || rep.Unmeasured != 1 || rep.OK() {
		t.Errorf("%d errors, %d in the warm-up (%q), %d unmeasured, OK %v; want 0, 1, 1 and not all right",
			rep.Errors, rep.WarmupErrors, rep.FirstWarmupError, rep.Unmeasured, rep.OK())
	}
}

// resetFirstServer answers lines in uppercase, but resets the first
// connection it accepts at that connection's first message (in a run's
// warm-up, for the tests that use it).
func resetFirstServer(t *testing.T) string {
	var accepted atomic.Int64
	return shouttest.StreamServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		first := accepted.Add(1) == 1
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if first { // the first connection: reset at its first message, in the warm-up
				c.(*net.TCPConn).SetLinger(0)
				return
			}
			if _, err := io.WriteString(c, upper(line)); err != nil {
				return
			}
		}
	})
}

// An error in the warm-up is the warm-up's: reported apart, in no count
// of the measured part, whose statement is that every count is of it. A
// warm-up reset counted among the run's errors and failed a run whose
// every measured reply was right.
func TestWarmupErrorsApart(t *testing.T) {
	t.Parallel()
	addr := resetFirstServer(t)
	cfg := quick("tcp", addr)
	cfg.Conns, cfg.Depth = 2, 1
	cfg.Warmup, cfg.Duration = time.Second, 200*time.Millisecond
	rep := run(t, cfg)
	// Not all right all the same: one of the two connections asked for
	// was not there while measuring (TestWarmupLossIsLessLoad).
	if rep.Errors != 0 || rep.WarmupErrors != 1 || rep.FirstError != "" || rep.Unmeasured != 1 {
		t.Errorf("a reset in the warm-up: %d errors (%q), %d in the warm-up (%q), %d unmeasured; want 0, 1 and 1",
			rep.Errors, rep.FirstError, rep.WarmupErrors, rep.FirstWarmupError, rep.Unmeasured)
	}
	var out strings.Builder
	rep.WriteText(&out)
	if !strings.Contains(out.String(), "warm-up   1 error before measuring, in no count above") {
		t.Errorf("the report does not show the warm-up's error apart:\n%s", out.String())
	}
}

// The progress line is each second's own figures, as the timeline is:
// it showed msg/s of the second but wrong, errors and lost as running
// totals, so a second with no new wrong reply still showed them all.
func TestProgressIsPerSecond(t *testing.T) {
	t.Parallel()
	addr := streamServer(t, 4096, bytes.Clone) // every reply wrong: ascii text unchanged
	var progress bytes.Buffer
	cfg := quick("tcp", addr)
	cfg.Conns, cfg.Text, cfg.Progress = 2, "ascii", &progress
	cfg.Duration = 1500 * time.Millisecond // a line at 1 s, another for the last half second
	rep := run(t, cfg)
	lines := strings.Split(strings.TrimSpace(progress.String()), "\n")
	if len(lines) != len(rep.Timeline) || len(lines) == 0 {
		t.Fatalf("%d progress lines for %d seconds in the timeline, want as many:\n%s", len(lines), len(rep.Timeline), progress.String())
	}
	if len(lines) < 2 { // a machine so slow that the end came before the second line
		t.Logf("only one progress line: running totals would not show")
	}
	for k, line := range lines {
		s := rep.Timeline[k]
		want := fmt.Sprintf("  %d wrong  %d errors  %d lost", s.Wrong, s.Errors, s.Lost)
		if !strings.Contains(line, want) || !strings.Contains(line, "in the last ") {
			t.Errorf("progress line %d %q lacks that second's own %q, labelled", k, line, want)
		}
	}
	if rep.Timeline[0].Wrong == 0 {
		t.Errorf("no wrong reply in the first second: the test shows nothing")
	}
}

// MB/s is of the bytes that came back, not the message size times the
// rate: a reply may be longer than its message ("ß" is "SS"). Here every
// reply is its message's text twice, 2 × Size - 1 bytes with its
// newline, and the report said Size bytes a reply.
func TestBytesPerSecIsWhatCame(t *testing.T) {
	t.Parallel()
	twice := func(b []byte) []byte {
		var out []byte
		for line := range bytes.Lines(b) {
			text := bytes.TrimSuffix(line, []byte("\n"))
			out = append(append(append(out, text...), text...), '\n')
		}
		return out
	}
	tcp := lineServer(t, func(line string) string { return string(twice([]byte(line))) })
	udp := udpServer(t, func(_ int, b []byte) [][]byte { return [][]byte{append(bytes.Clone(b), b[20:]...)} })
	for _, tc := range []struct {
		network, addr string
		reply         float64 // bytes of each reply
	}{
		{"tcp", tcp, 2*64 - 1},
		{"udp", udp, 2*64 - 20}, // the sequence number once, the text twice
	} {
		t.Run(tc.network, func(t *testing.T) {
			t.Parallel()
			cfg := quick(tc.network, tc.addr)
			cfg.Conns, cfg.Size, cfg.Text, cfg.Mode = 2, 64, "ascii", "echo"
			cfg.Duration = busyWindow
			rep := run(t, cfg)
			if rep.MessagesPerSec == 0 {
				t.Fatalf("no reply came: %+v", rep)
			}
			if per := rep.BytesPerSec / rep.MessagesPerSec; math.Abs(per-tc.reply) > 1e-6*tc.reply {
				t.Errorf("%.1f MB/s at %.0f msg/s is %.2f bytes a reply; want the %.0f that came", rep.BytesPerSec/1e6, rep.MessagesPerSec, per, tc.reply)
			}
		})
	}
}

// resetAfter is a stand-in stream server that answers n lines on each
// connection and resets it when the next comes.
func resetAfter(t *testing.T, n int) string {
	return shouttest.StreamServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for i := 0; ; i++ {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if i == n {
				c.(*net.TCPConn).SetLinger(0) // the close resets
				return
			}
			if _, err := io.WriteString(c, upper(line)); err != nil {
				return
			}
		}
	})
}

// Once every connection has failed, and none is made again, nothing is
// left to measure: the run ends there, says it was cut short, and its
// rates are over the time it measured. It ran its whole Duration,
// reporting 0 msg/s a second, and its rates were over all of it.
func TestAllConnectionsFailedEndsTheRun(t *testing.T) {
	cfg := quick("tcp", resetAfter(t, 10))
	cfg.Conns, cfg.Depth, cfg.Text = 2, 1, "ascii"
	cfg.Duration = 5 * time.Second // ended, with the fix, by the resets
	rep := run(t, cfg)
	if rep.CutShort != "every connection had failed, and none is made again without reconnect" || rep.OK() {
		t.Errorf("every connection reset: cut short %q, OK %v; want it said and not all right", rep.CutShort, rep.OK())
	}
	// One error and one lost message a connection, whichever driver.
	if rep.Messages != 20 || rep.Errors != 2 || rep.Lost != 2 || rep.MeasuredS >= rep.DurationS {
		t.Errorf("%d messages, %d errors, %d lost over %.2fs of %gs; want 20, 2 and 2, over less than asked",
			rep.Messages, rep.Errors, rep.Lost, rep.MeasuredS, rep.DurationS)
	}
	if want := float64(20) / rep.MeasuredS; math.Abs(rep.MessagesPerSec-want) > 1e-9*want {
		t.Errorf("%.1f msg/s; want the 20 replies over the %.3fs measured, %.1f", rep.MessagesPerSec, rep.MeasuredS, want)
	}
	var out strings.Builder
	rep.WriteText(&out)
	for _, want := range []string{"of 5s, cut short: every connection had failed", "cut short after "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}

	// Every connection failed before measuring: no report, but why. The
	// error wraps the first failure, for errors.Is and As, and for
	// named.Text to name the settings it may name (a program's flags).
	cfg = quick("tcp", resetAfter(t, 0))
	cfg.Conns, cfg.Depth, cfg.Warmup = 2, 1, 5*time.Second
	rep, err := bench.Run(context.Background(), cfg)
	if err == nil || !strings.HasPrefix(err.Error(), "every connection failed in the warm-up, before measuring; the first: receive: ") ||
		!saysReset(err.Error()) || !sockerr.Reset(err) {
		t.Errorf("every connection reset in the warm-up: %v (report %+v); want it to wrap the reset", err, rep)
	}
	// Closed, not reset, before a reply: the first was "?". Not a byte
	// came back over plain TCP: said as connect says it, a TLS server's
	// way with plain text.
	cfg.Endpoint.Address = afterLine(t, func(net.Conn, string) {})
	rep, err = bench.Run(context.Background(), cfg)
	if want := "every connection failed in the warm-up, before measuring; the first: receive: the server closed the connection before the reply began; " +
		client.SilentClose(cfg.Endpoint.Address); err == nil || err.Error() != want {
		t.Errorf("every connection closed in the warm-up: %v (report %+v); want %q", err, rep, want)
	}
}

// A plain TCP server that closes every connection without a byte back,
// as a TLS server does on plain text, has it said beside the first wrong
// reply, as connect says it; one that sent something is no such server.
func TestSilentServerSaysTryTLS(t *testing.T) {
	silent := afterLine(t, func(net.Conn, string) {})
	cfg := quick("tcp", silent)
	cfg.Conns, cfg.Depth, cfg.Warmup, cfg.Duration = 2, 1, -1, busyWindow // (cut short by the closes)
	rep := run(t, cfg)
	if want := "; " + client.SilentClose(silent); !strings.HasSuffix(rep.FirstMismatch, want) {
		t.Errorf("a silent server: first wrong reply %q; want it to end %q", rep.FirstMismatch, want)
	}
	// A byte, then the close: it spoke, whatever it is.
	cfg.Endpoint.Address = afterLine(t, func(c net.Conn, _ string) { c.Write([]byte("x")) })
	rep = run(t, cfg)
	if rep.FirstMismatch == "" || strings.Contains(rep.FirstMismatch, "TLS") {
		t.Errorf("a server that sent a byte: first wrong reply %q; want one, with no word of TLS", rep.FirstMismatch)
	}
}

// A reset that the goroutine driver's writer meets first leaves its
// reader only the end of file, as if the server had closed cleanly before
// its reply: the run counted a reset as a wrong reply. Here the reader
// waits until the write has failed, as a busy machine may make it.
func TestResetTheWriterMetIsNotAWrongReply(t *testing.T) {
	if !goroutineDriver {
		t.Skip("the event loops read and write a connection in one goroutine")
	}
	defer bench.PauseStreamReadersUntilSendFails(bound)()
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		c.Read(make([]byte, 1)) // the first message has come
		c.(*net.TCPConn).SetLinger(0)
	})
	cfg := quick("tcp", addr)
	cfg.Conns, cfg.Rate, cfg.Text = 1, 1000, "ascii" // writes on, whatever the reader does
	cfg.Duration = 5 * time.Second                   // cut short by the reset
	rep := run(t, cfg)
	if rep.Mismatches != 0 || rep.Errors != 1 || rep.Lost == 0 || rep.CutShort == "" {
		t.Errorf("%d wrong (the first %q), %d errors (the first %q), %d lost, cut short %q; want 0 wrong, the reset one error, its messages lost",
			rep.Mismatches, rep.FirstMismatch, rep.Errors, rep.FirstError, rep.Lost, rep.CutShort)
	}
}

// Bytes that answer no message are one wrong reply a line, however many
// reads bring them: the event loops counted one a read, 329 wrong of 21
// messages from a server that sent bytes without end. Here two lines and
// a megabyte with no newline follow the only reply, the megabyte at
// least 16 of the loops' reads, the two lines perhaps one. The goroutine
// driver counts them so too, since it reads what comes between an open
// loop's messages (it read a connection only for a reply owed, and
// counted none of them).
func TestStrayBytesAreOneWrongReplyALine(t *testing.T) {
	t.Parallel()
	addr := afterLine(t, func(c net.Conn, line string) {
		io.WriteString(c, upper(line)+"stray one\nstray two\n")
		c.Write(bytes.Repeat([]byte("z"), 1<<20))
		io.Copy(io.Discard, c) // until bench closes
	})
	cfg := quick("tcp", addr)
	cfg.Conns, cfg.Rate, cfg.Text = 1, 1, "ascii" // one message, at the start
	cfg.Duration = 500 * time.Millisecond
	// Again, at most five times in all, while fewer came wrong: wrong
	// bytes count in the window only, and a stall can hold bench's read
	// of the megabyte past it (h160: "1 replies, 2 wrong").
	var rep *bench.Report
	for try := range 5 {
		if rep = run(t, cfg); rep.Messages != 1 || rep.Mismatches >= 3 {
			break
		}
		t.Logf("run %d of at most 5: %d wrong in its %v window, the rest perhaps read after it", try+1, rep.Mismatches, cfg.Duration)
	}
	if rep.Messages != 1 || rep.Mismatches != 3 {
		t.Errorf("%d replies, %d wrong (the first %q); want the one reply, and three wrong for the lines after it", rep.Messages, rep.Mismatches, rep.FirstMismatch)
	}
}

// A server that takes none of what is sent is said to, not only to have
// sent no reply: the event loops said "no reply within", though they held
// bytes it had not taken for as long.
func TestServerThatReadsNothingSaysSo(t *testing.T) {
	if goroutineDriver {
		t.Skip("the goroutine driver's reader and writer time out alike; the reader's is counted")
	}
	release := make(chan struct{})
	addr := shouttest.StreamServer(t, func(net.Conn) { <-release }) // accepts, never reads
	t.Cleanup(func() { close(release) })                            // before the server's own
	// Two distinct messages, sent in turn: 64 of 1 MiB, each made and
	// uppercased for its reference, took a minute under the race detector
	// on a busy machine, a tenth of go test's time for the package.
	t.Cleanup(bench.SetMessagesHeld(2 << 20))
	cfg := quick("tcp", addr)
	cfg.Conns, cfg.Depth, cfg.Size, cfg.Text = 1, 8, 1<<20, "ascii" // more than the sockets' buffers hold
	// The time-out ends the run (its connection fails), and the window
	// is a safety net: it must outlast the first send, whose error after
	// the window's end counts for nothing. Under the race detector that
	// send, 8 MiB put together and written, took 2 to 5 s of a window of
	// 5 s on a busy machine, and the loop looked first after its end.
	cfg.Timeout, cfg.Duration = 300*time.Millisecond, time.Minute
	rep := run(t, cfg)
	if want := "send: the server took no bytes for 300ms"; rep.FirstError != want {
		t.Errorf("first error %q; want %q", rep.FirstError, want)
	}
}

// What an open loop's connections hold that their server has not taken
// is bounded in all, not only each: against a server that reads nothing,
// each held up to 2 MiB, and 19,000 connections, 38 GB. What falls due
// past the bound is never sent (Unsent).
func TestOpenLoopUnsentBoundedInAll(t *testing.T) {
	release := make(chan struct{})
	addr := shouttest.StreamServer(t, func(net.Conn) { <-release }) // accepts, never reads
	t.Cleanup(func() { close(release) })                            // before the server's own
	const budget = 256 << 10
	t.Cleanup(bench.SetUnsentBudget(budget))
	var mu sync.Mutex
	most := map[int]int{} // each connection's most held at once
	t.Cleanup(bench.OnUnsentHeld(func(conn, bytes int) {
		mu.Lock()
		most[conn] = max(most[conn], bytes)
		mu.Unlock()
	}))
	cfg := quick("tcp", addr)
	// 160 MB/s a connection: the sockets' buffers full in milliseconds,
	// and every write after a whole one.
	cfg.Size, cfg.Rate, cfg.Text = 16<<10, 40000, "ascii"
	cfg.Timeout, cfg.Duration = time.Second, time.Second
	rep := run(t, cfg)
	mu.Lock()
	defer mu.Unlock()
	held := 0
	for _, n := range most {
		held += n
	}
	if held > budget || rep.Unsent == 0 {
		t.Errorf("%d connections held up to %d bytes unwritten in all (%v), %d never sent; want at most %d, and some never sent", len(most), held, most, rep.Unsent, budget)
	}
}

// A reset in the middle of a reply says so, whichever driver: the event
// loops said only "connection reset by peer", the half reply unmentioned.
func TestResetMidReplySaysSo(t *testing.T) {
	addr := afterLine(t, func(c net.Conn, line string) {
		io.WriteString(c, upper(line)[:len(line)/2])
		c.(*net.TCPConn).SetLinger(0) // the close resets
	})
	cfg := quick("tcp", addr)
	cfg.Conns, cfg.Depth, cfg.Text = 1, 1, "ascii"
	cfg.Duration = 5 * time.Second // cut short by the reset
	rep := run(t, cfg)
	if !strings.HasPrefix(rep.FirstError, "receive: a reply begun but not ended (") || !saysReset(rep.FirstError) ||
		rep.Errors != 1 || rep.Mismatches != 0 {
		t.Errorf("first error %q, %d errors, %d wrong; want the reply begun and the reset named, one error, none wrong", rep.FirstError, rep.Errors, rep.Mismatches)
	}
}

// saysReset reports whether msg, an error of bench's, names a reset as
// shout connect does, in words: the goroutine driver said "read tcp
// 127.0.0.1:40950->127.0.0.1:43199: read: connection reset by peer", Go's
// layers and both addresses, and the event loops the system's "by peer".
func saysReset(msg string) bool {
	return strings.HasSuffix(msg, ": connection reset by the server") && !strings.Contains(msg, "->") && !strings.Contains(msg, "tcp ")
}

// A reset is at most one error, whichever driver: the event loops count
// a connection's failure once. The goroutine driver's writer and reader
// both met it (the write's broken pipe, the read's reset) and, unless the
// reader had closed dead before the write failed, both counted it: two
// errors in about a third of these runs. Its open loop writes while the
// reader reads, so the two race; a run is cut short at the reset. (A
// write that takes the reset leaves the reader end of file: that is the
// reset too, not a wrong reply; see the test above.)
func TestResetIsOneError(t *testing.T) {
	addr := resetAfter(t, 200)
	for i := range 20 {
		cfg := quick("tcp", addr)
		cfg.Conns, cfg.Rate, cfg.Text = 1, 20000, "ascii"
		cfg.Duration = 5 * time.Second // cut short by the reset
		rep := run(t, cfg)
		if rep.Errors != 1 || rep.Mismatches != 0 || rep.CutShort == "" {
			t.Fatalf("run %d: %d errors (the first %q), %d wrong, cut short %q; want the reset one error, no wrong reply, and cut short",
				i, rep.Errors, rep.FirstError, rep.Mismatches, rep.CutShort)
		}
	}
}

// A UDP server that is not there refuses each datagram (ICMP port
// unreachable, ECONNREFUSED on the connected socket): that is as
// unreachable as a refused TCP connect, not datagrams lost. The run took
// its warm-up, its duration and its timeout, then reported them lost.
func TestUDPRefusedIsUnreachable(t *testing.T) {
	if goroutineDriver {
		t.Skip("UDP has one driver")
	}
	addr := shouttest.RefusingUDP(t)
	for _, warmup := range []time.Duration{-1, 3 * time.Second} {
		cfg := quick("udp", addr)
		cfg.Conns, cfg.Warmup = 2, warmup
		rep, err := bench.Run(context.Background(), cfg)
		var ue *bench.UnreachableError
		if !errors.As(err, &ue) || err.Error() != "send "+addr+": connection refused" {
			t.Errorf("warm-up %v: got %v (report %+v); want unreachable: send %s: connection refused", warmup, err, rep, addr)
		}
	}
}

// A UDP socket the system connects to itself (given the address and port
// it is dialled to, where nothing listens: one in some 28,000 to a port
// freed in the range it gives from) is dialled again; three running are
// a connect error. Bench dialled its sockets itself, and took its own
// datagrams back as wrong replies, the truth being "refused". (Not
// parallel: SetUDPLocal.)
func TestUDPSelfConnectedIsUnreachable(t *testing.T) {
	if goroutineDriver {
		t.Skip("UDP has one driver")
	}
	addr := closedUDPPort(t)
	defer bench.SetUDPLocal(addr)()
	cfg := quick("udp", addr.String())
	cfg.Conns = 1 // (two could not both be bound to addr)
	rep, err := bench.Run(context.Background(), cfg)
	var ue *bench.UnreachableError
	want := "connect " + addr.String() + ": the system gave the socket the address and port it connects to, three times"
	if !errors.As(err, &ue) || err.Error() != want {
		if rep != nil {
			t.Logf("%d replies, %d wrong, first %s", rep.Messages, rep.Mismatches, rep.FirstMismatch)
		}
		t.Errorf("got %v; want unreachable: %s", err, want)
	}
}

// closedUDPPort is an address on 127.0.0.1 where nothing listens, its
// port let go: free for the tests that bind their own socket to it (the
// self-connected dial). One that wants it refused throughout takes
// shouttest.RefusingUDP's, which no other socket can take meanwhile.
func closedUDPPort(t *testing.T) net.Addr {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr()
}

// A UDP server that goes away mid-run is refused from then on (ICMP port
// unreachable): the socket's error. What it had in flight got no reply
// and is lost, as a reset connection's messages are: an open loop's
// datagrams were neither answered nor lost, and the run said "0 lost".
func TestUDPServerGoneMidRunLosesWhatWasInFlight(t *testing.T) {
	if goroutineDriver {
		t.Skip("UDP has one driver")
	}
	addr, _ := goneAfterFive(t)
	cfg := quick("udp", addr)
	cfg.Conns, cfg.Rate, cfg.Text = 1, 1000, "ascii"
	cfg.Duration = 10 * time.Second // cut short by the refusal
	rep := run(t, cfg)
	if rep.Messages != 5 || rep.Errors == 0 || rep.Lost == 0 {
		t.Errorf("%d answered, %d errors, %d lost; want five answered, the sixth and later lost, and the refusal an error: %+v", rep.Messages, rep.Errors, rep.Lost, rep)
	}
}

// Timeout is how long a reply may take, not a connect or a handshake:
// a demanding 200 µs could not connect ("connect ...: timed out"),
// with the server up. Connecting has ConnectTimeout.
func TestTimeoutIsNotForConnecting(t *testing.T) {
	tlsEndpoint, client := tlsServer(t)
	tcpEndpoint := endpoint.Endpoint{Network: "tcp", Address: shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler)})}
	for _, tc := range []struct {
		name string
		e    endpoint.Endpoint
	}{{"tcp", tcpEndpoint}, {"tls", tlsEndpoint}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := quick("tcp", "")
			cfg.Endpoint, cfg.TLS, cfg.Timeout = tc.e, client, 200*time.Microsecond
			cfg.Duration = 100 * time.Millisecond
			if rep, err := bench.Run(context.Background(), cfg); err != nil {
				t.Errorf("a reply timeout of 200µs: %v (report %+v); want the run made, whatever its replies", err, rep)
			}
		})
	}
}

// With Reconnect, a server that accepts and closes at once (shout serve
// at its --max-conns) is dialled again after a back-off, not at once: a
// connection was made again 2,600 times a second. One connection here is
// served; every other is closed before a reply, which is counted and
// named in the report, and the one refused throughout makes the run not
// all right (TestReconnectNeverServedNotAllRight).
func TestReconnectBacksOff(t *testing.T) {
	t.Parallel()
	if goroutineDriver {
		t.Skip("reconnect needs the event-loop driver")
	}
	var accepted atomic.Int64
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		if accepted.Add(1) > 1 {
			closeGracefully(c) // service refused, as at --max-conns
			return
		}
		answerLines(c, bufio.NewReader(c))
	})
	cfg := quick("tcp", addr)
	cfg.Conns, cfg.Depth, cfg.Reconnect = 2, 1, true
	cfg.Duration = time.Second
	rep := run(t, cfg)
	// Waits of 100, 200, 400, 800 ms ... for the refused connection: a
	// handful of dials in the second and the wait at the end. (A slower
	// machine dials fewer, not more.)
	if n := accepted.Load(); n > 20 {
		t.Errorf("%d connections accepted in a run of %gs; want a back-off between those closed at once", n, rep.DurationS)
	}
	if rep.Unserved == 0 {
		t.Errorf("a connection refused service throughout: %d closed before serving; want them counted", rep.Unserved)
	}
	var out strings.Builder
	rep.WriteText(&out)
	if !strings.Contains(out.String(), fmt.Sprintf("%d closed by the server before serving a reply", rep.Unserved)) {
		t.Errorf("the report does not say so:\n%s", out.String())
	}
	if rep.OK() || rep.NeverServed != 1 {
		t.Errorf("OK %v, %d never served; want not all right, 1:\n%s", rep.OK(), rep.NeverServed, out.String())
	}
}

// lineServer is a stand-in stream server that answers each line with f of it.
func lineServer(t *testing.T, f func(string) string) string {
	return scriptServer(t, func(_ int, line string) (string, bool) { return f(line), false })
}

// scriptServer is a stand-in stream server that answers the i-th line
// of each connection (from 0) with what reply makes of it; once reply
// says end, it closes the connection gracefully after that answer.
func scriptServer(t *testing.T, reply func(i int, line string) (answer string, end bool)) string {
	return shouttest.StreamServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for i := 0; ; i++ {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			answer, end := reply(i, line)
			if _, err := io.WriteString(c, answer); err != nil {
				return
			}
			if end {
				closeGracefully(c)
				return
			}
		}
	})
}

// afterLine is a stand-in stream server that reads each connection's
// first line (the whole message: closing with input unread would reset)
// and then does then with it. It returns its address.
func afterLine(t *testing.T, then func(c net.Conn, line string)) string {
	return shouttest.StreamServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(bound))
		if line, err := bufio.NewReader(c).ReadString('\n'); err == nil {
			then(c, line)
		}
	})
}

// answerTwo answers c's first two lines, and reports whether it did.
func answerTwo(c net.Conn) bool {
	r := bufio.NewReader(c)
	for range 2 {
		line, err := r.ReadString('\n')
		if err != nil {
			return false
		}
		if _, err := io.WriteString(c, upper(line)); err != nil {
			return false
		}
	}
	return true
}

// upper is the uppercase shout answers with.
func upper(s string) string { return cases.Upper(language.Und).String(s) }

// answerLines answers every line read from r, c's reader, in uppercase,
// until c fails: a stand-in server's connection once it has done what
// its test has it do first.
func answerLines(c net.Conn, r *bufio.Reader) {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := io.WriteString(c, upper(line)); err != nil {
			return
		}
	}
}

// The check follows --lang through x/text: a server with x/text's Turkish
// uppercase passes --lang tr, and the same server is caught when plain
// uppercase is wanted, as is a server with a deliberately wrong mapping.
func TestCheckFollowsLanguage(t *testing.T) {
	t.Parallel()
	turkish := func(s string) string { return cases.Upper(language.Turkish).String(s) }
	und := func(s string) string { return cases.Upper(language.Und).String(s) }
	// Wrong only for "ΐ": kept as it is.
	wrong := func(s string) string { return strings.ReplaceAll(und(s), "\u0399\u0308\u0301", "ΐ") }
	for _, tc := range []struct {
		name, mode, lang string
		server           func(string) string
		ok               bool
	}{
		{"turkish server, --lang tr", "upper", "tr", turkish, true},
		{"turkish server, no --lang", "upper", "", turkish, false},
		{"plain server, --lang tr", "upper", "tr", und, false},
		{"plain server, no --lang", "", "", und, true},
		{"server that keeps ΐ", "upper", "", wrong, false},
		{"plain server, --mode simple", "simple", "", und, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := quick("tcp", lineServer(t, tc.server))
			cfg.Mode, cfg.Lang = tc.mode, tc.lang // quick's 2 s timeout: each reply is on time, loaded machine or not
			rep := run(t, cfg)
			if rep.OK() != tc.ok {
				t.Errorf("OK() = %v, want %v: %+v", rep.OK(), tc.ok, rep)
			}
		})
	}
}

// A server that stops reading: bench's sends back up, the run still ends,
// and the messages owed are lost and the stall an error.
func TestServerStopsReading(t *testing.T) {
	t.Parallel()
	stop := make(chan struct{})
	addr := shouttest.StreamServer(t, func(c net.Conn) { <-stop })
	t.Cleanup(func() { close(stop) })
	cfg := quick("tcp", addr)
	cfg.Conns, cfg.Depth, cfg.Size, cfg.Text = 1, 64, 60000, "ascii"
	// Long enough for the stall to outlast the timeout while measuring.
	cfg.Duration, cfg.Timeout = time.Second, 300*time.Millisecond
	rep := run(t, cfg)
	// The stall is an error if bench saw it while measuring: on a machine
	// so busy that it did not, the messages are lost all the same.
	if rep.OK() || rep.Lost != 64 {
		t.Errorf("got %d lost; want 64, and not OK: %+v", rep.Lost, rep)
	}
	t.Logf("%d errors, the first: %s", rep.Errors, rep.FirstError)
}

// tlsServer serves shout over TLS with a certificate made in memory, and
// returns its endpoint and a client configuration that trusts it.
func tlsServer(t *testing.T) (endpoint.Endpoint, *tls.Config) {
	return tlsServerAuth(t, tls.NoClientCert)
}

// tlsServerAuth is tlsServer asking clients for a certificate as auth
// says.
func tlsServerAuth(t *testing.T, auth tls.ClientAuthType) (endpoint.Endpoint, *tls.Config) {
	return tlsServerObserved(t, auth, nil)
}

// tlsServerObserved is tlsServerAuth whose server has Observer obs.
func tlsServerObserved(t *testing.T, auth tls.ClientAuthType, obs server.Observer) (endpoint.Endpoint, *tls.Config) {
	store, err := certs.SelfSigned([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := certs.ServerConfig(store, "")
	cfg.ClientAuth = auth
	e := endpoint.Endpoint{Network: "tcp", Address: "127.0.0.1:0", TLS: true}
	lns, _, err := endpoint.Options{TLS: cfg}.Listen([]endpoint.Endpoint{e})
	if err != nil {
		t.Fatal(err)
	}
	srv := &server.Server{Logger: slog.New(slog.DiscardHandler), Observer: obs}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(lns[0]) }()
	t.Cleanup(func() { srv.Close(); <-done })
	leaf, _ := store.GetCertificate(nil)
	cert, _ := x509.ParseCertificate(leaf.Certificate[0])
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	e.Address = lns[0].Addr().String()
	return e, &tls.Config{RootCAs: pool}
}

// A TLS server that refuses the client (--client-ca, and the client has
// no certificate) is said to: over TLS 1.3 its alert comes with the first
// read, and the error said "receive: tls: certificate required", as if
// the client had refused, where Go says "remote error: tls: ...".
func TestTLSServersAlertSaysTheServer(t *testing.T) {
	e, client := tlsServerAuth(t, tls.RequireAnyClientCert)
	cfg := quick("tcp", "")
	cfg.Endpoint, cfg.TLS, cfg.Conns, cfg.Depth = e, client, 1, 1
	cfg.Duration = 5 * time.Second // cut short: the only connection fails
	rep, err := bench.Run(context.Background(), cfg)
	msg := ""
	switch {
	case err != nil:
		msg = err.Error()
	case rep != nil:
		msg = rep.FirstError
	}
	if want := "receive: the server ended the connection with a TLS alert: certificate required"; !strings.Contains(msg, want) {
		t.Errorf("got %q; want %q in it", msg, want)
	}
}

// readsUntil is an Observer that calls the function given to at once
// its servers have read k times since: a message read is answered, and
// the reply awaited in the run's drain.
type readsUntil struct {
	mu     sync.Mutex
	left   int
	enough func()
}

func (r *readsUntil) at(k int, enough func()) {
	r.mu.Lock()
	r.left, r.enough = k, enough
	r.mu.Unlock()
}

func (r *readsUntil) ConnRead(*server.ConnInfo, []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.left > 0 {
		if r.left--; r.left == 0 {
			r.enough()
		}
	}
}

func (*readsUntil) ConnOpen(*server.ConnInfo)     {}
func (*readsUntil) ConnClose(*server.ConnInfo)    {}
func (*readsUntil) Datagram(*server.DatagramInfo) {}

// Over TLS, pipelined and churning (a handshake per message), and over
// plain TCP churning: every reply checked. Over TLS in an open loop too,
// whose reader waits on the connection between messages and has its
// read deadline moved by the writer (see flight.watch), with the records
// whole and split a byte a write (a wait may end mid-record).
//
// Each run ends once the server has read enough (see readsUntil), within
// 10 s, a bound: in 300 ms a busy machine had made no TLS handshake, and
// churning, no message.
func TestTLSAndChurn(t *testing.T) {
	t.Parallel()
	var reads readsUntil
	tlsEndpoint, client := tlsServerObserved(t, tls.NoClientCert, &reads)
	tcpEndpoint := endpoint.Endpoint{Network: "tcp", Address: shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler), Observer: &reads})}
	split := tlsEndpoint
	split.Address = shouttest.StreamRelay(t, tlsEndpoint.Address, shouttest.Stream{Chunk: 1}, shouttest.Stream{Chunk: 1})
	for _, tc := range []struct {
		name  string
		e     endpoint.Endpoint
		churn bool
		rate  float64
	}{
		{"tls", tlsEndpoint, false, 0},
		{"tls churn", tlsEndpoint, true, 0},
		{"tcp churn", tcpEndpoint, true, 0},
		{"tls open loop", tlsEndpoint, false, 200},
		{"tls open loop, records split", split, false, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Patient: none lost to a stall past Timeout (2 s, under
			// -race on a busy machine), which TLS has no part in.
			cfg := bench.Patient(quick("tcp", ""))
			cfg.Endpoint, cfg.TLS, cfg.Churn, cfg.Rate = tc.e, client, tc.churn, tc.rate
			cfg.Duration = busyWindow
			if tc.churn {
				cfg.Depth = 1
			}
			cfg.Duration = 10 * time.Second
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// 40 reads: at 200 a second, about 200 ms of an open loop.
			reads.at(40, cancel)
			counted := onScheduleCounts(t, cfg.Endpoint.Address)
			rep, err := bench.Run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Interrupted { // (a stalled sender counts its due never sent)
				t.Errorf("the server read fewer than 40 times in %v", cfg.Duration)
			}
			if tc.rate == 0 {
				if !rep.OK() {
					t.Fatalf("report %+v", rep)
				}
				checkSentCounted(t, rep)
				return
			}
			// An open loop may fall behind the rate on a busy machine
			// (the more so with every byte a write through the relay), or
			// begin its schedule late: those due and never sent for it
			// are the machine's, counted, and the run not all right,
			// which is true. What TLS must not do: a reply wrong, an
			// error, a reply lost, a message due in no count or held
			// back for another reason.
			same(t, "wrong, errors and lost", rep.Mismatches+rep.Errors+rep.Lost, 0)
			same(t, "never sent on failed connections or for replies too far behind", rep.UnsentFailed+rep.UnsentUnanswered, 0)
			checkEveryDueCounted(t, rep, counted, cfg)
			if rep.Messages == 0 {
				t.Error("no message answered")
			}
			if t.Failed() {
				t.Logf("%d messages, %d wrong, %d errors, %d lost, %d never sent (%d on failed connections, %d for replies behind) in %.3fs; first wrong %q; first error %q",
					rep.Messages, rep.Mismatches, rep.Errors, rep.Lost, rep.Unsent, rep.UnsentFailed, rep.UnsentUnanswered, rep.MeasuredS, rep.FirstMismatch, rep.FirstError)
			}
		})
	}
	// A certificate nobody vouches for: the run does not start.
	cfg := quick("tcp", "")
	cfg.Endpoint = tlsEndpoint
	if _, err := bench.Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("against an unknown certificate: %v", err)
	}
}

// A churning run catches a wrong server as a pipelined one does.
func TestChurnCatchesWrongServer(t *testing.T) {
	t.Parallel()
	addr := lineServer(t, strings.ToUpper) // keeps ß
	cfg := quick("tcp", addr)
	cfg.Churn, cfg.Depth = true, 1
	if rep := runMeasuring(t, cfg); rep.OK() || rep.Mismatches == 0 {
		t.Errorf("a server that keeps ß passed a churning run: %+v", rep)
	}
}

// closingServer answers n lines on each connection, then closes it
// gracefully.
func closingServer(t *testing.T, n int) string {
	return scriptServer(t, func(i int, line string) (string, bool) { return upper(line), i == n-1 })
}

// closeGracefully closes c as shout serve does when it stops: shuts its
// write side, then reads until the client's end of file.
func closeGracefully(c net.Conn) {
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(bound))
	io.Copy(io.Discard, c)
}

const bound = 10 * time.Second

// heldPastStalls returns once d has passed, and then the process has run
// for 100 ms without a stall (a 5 ms tick more than 25 ms late), or after
// bound. A stand-in that holds a reply so, to see what bench does first,
// lets bench's own timer for it, due before d, run before the reply
// comes: a stall over both (the process stopped on a busy machine) let
// them run in either order.
func heldPastStalls(d time.Duration) {
	const tick, late, calm = 5 * time.Millisecond, 25 * time.Millisecond, 100 * time.Millisecond
	start := time.Now()
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	last, calmSince := start, start
	for range bound / tick {
		<-ticker.C
		now := time.Now()
		if now.Sub(last) > tick+late {
			calmSince = now
		}
		last = now
		if now.Sub(start) >= bound || now.Sub(start) >= d && now.Sub(calmSince) >= calm {
			return
		}
	}
}

// stalledDuring runs f and reports whether the process stalled while it
// ran: a 10 ms tick came gap or more late (the process stopped on a busy
// machine, a VM descheduled). A test whose point is what bench does at a
// Timeout runs again a try that went wrong so: a stall as long as
// Timeout let bench's timer run before the reply it timed was read, or
// written, by the clock rightly. A try that went wrong without one fails.
func stalledDuring(gap time.Duration, f func()) bool {
	const tick = 10 * time.Millisecond
	var stalled atomic.Bool
	done, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		ticker := time.NewTicker(tick)
		defer ticker.Stop()
		last := time.Now()
		for range 2 * time.Hour / tick { // (go test's own limit ends a test first)
			select {
			case <-done:
			case <-ticker.C:
			}
			// (By the clock as read, not the tick's time: a tick run late
			// carries the time it was due.)
			now := time.Now()
			if now.Sub(last) >= gap {
				stalled.Store(true)
			}
			last = now
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	f()
	close(done)
	<-watched
	return stalled.Load()
}

// With Reconnect a connection the server closes gracefully is made again
// and the run goes on: what was owed is sent again, nothing is lost.
// Without it, the same server fails the run.
func TestReconnect(t *testing.T) {
	t.Parallel()
	if goroutineDriver {
		t.Skip("reconnect needs the event-loop driver")
	}
	addr := closingServer(t, 50)
	// Patient: a reply is lost to a stall past Timeout, whatever
	// reconnecting does (2 s, under -race on a busy machine).
	cfg := bench.Patient(quick("tcp", addr))
	cfg.Reconnect, cfg.Duration = true, busyWindow
	rep := run(t, cfg)
	if !rep.OK() || rep.Reconnects == 0 || rep.Lost != 0 {
		t.Errorf("with reconnect: OK %v, %d reconnects, %d lost, %d resent: %+v", rep.OK(), rep.Reconnects, rep.Lost, rep.Resent, rep)
	}
	t.Logf("%d messages, %d reconnects, %d resent", rep.Messages, rep.Reconnects, rep.Resent)
	// The count is of every connection made again, not only those the
	// server closed: one that failed (a reset, no reply) is made again too.
	var text strings.Builder
	rep.WriteText(&text)
	if !strings.Contains(text.String(), fmt.Sprintf("reconnect %d connections made again after the server closed them or they failed", rep.Reconnects)) {
		t.Errorf("the report does not say what was made again:\n%s", text.String())
	}
	cfg.Reconnect = false
	if rep := run(t, cfg); rep.OK() {
		t.Errorf("without reconnect a closing server passed: %+v", rep)
	}
}

// With Churn a connection the server closes without a reply is wrong, and
// no reply: it counted among the messages and their latencies, as if it
// had been answered (a helper's faulty server: 66 unanswered connections
// among the 6,676 messages).
func TestChurnNoReplyIsNoMessage(t *testing.T) {
	t.Parallel()
	cfg := quick("tcp", "")
	// The run ends once a worker's second message came, its first
	// exchange counted (wrong): in a window of 300 ms, a stall on a busy
	// machine left no exchange begun in it ("0 wrong").
	var asked atomic.Int64
	again, conns := make(chan struct{}), int64(cfg.Conns)
	cfg.Endpoint.Address = shouttest.StreamServer(t, func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(bound))
		n, _ := io.Copy(io.Discard, c) // reads the message, answers nothing
		if n > 0 && asked.Add(1) == conns+1 {
			close(again)
		}
	})
	cfg.Churn, cfg.Duration = true, time.Minute
	rep := runUntil(t, cfg, again)
	if rep.OK() || rep.Messages != 0 || rep.Mismatches == 0 {
		t.Errorf("a server that never answers: OK %v, %d messages, %d wrong; want not all right, no messages, some wrong", rep.OK(), rep.Messages, rep.Mismatches)
	}
	if !strings.Contains(rep.FirstMismatch, "the server closed the connection before the reply began") {
		t.Errorf("first wrong reply %q, want it to say the server closed the connection before the reply began", rep.FirstMismatch)
	}
}

// The warm-up's reconnections, and the messages they sent again, are not
// the run's: every count is of messages sent while measuring. Here the
// first connections close after 20 replies, within the warm-up, and the
// ones made for them never close; the report counted 4 reconnects and
// what they resent.
func TestReconnectsInWarmupNotCounted(t *testing.T) {
	t.Parallel()
	if goroutineDriver {
		t.Skip("reconnect needs the event-loop driver")
	}
	rep, accepted := runRedialedInWarmup(t, func(c net.Conn, r *bufio.Reader) {
		for range 20 {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := io.WriteString(c, upper(line)); err != nil {
				return
			}
		}
		closeGracefully(c)
	})
	if !rep.OK() || rep.Reconnects != 0 || rep.Resent != 0 {
		t.Errorf("closes in the warm-up only: OK %v, %d reconnects, %d resent; want all right, 0 and 0", rep.OK(), rep.Reconnects, rep.Resent)
	}
	if accepted != 8 {
		t.Errorf("%d connections accepted, want 8: 4, then 4 made again", accepted)
	}
}

// runRedialedInWarmup runs bench with Reconnect and a warm-up of a
// second against a stand-in that serves the run's first 4 connections
// (Conns) with first, then closes them, and answers every line on the
// ones made for them. It returns the report and how many connections the
// stand-in accepted.
//
// A run where a connection made again sent its first message once the
// warm-up's time was up (a stall on a busy machine, that pushed a close
// or bench's finding it past the window's start) may have counted its
// reconnect, and what it resent or was refused, as the window's,
// rightly: it tells nothing, and is made again, at most five times in
// all. (Bench counts a reconnect as it puts the new connection in place,
// and sends on it after; its window begins Warmup after the run began,
// or later.) So is a run that measured no message, a stall as long as
// the window after the warm-up: not all right, rightly ("0 reconnects"
// and OK false).
func runRedialedInWarmup(t *testing.T, first func(c net.Conn, r *bufio.Reader)) (rep *bench.Report, accepted int64) {
	t.Helper()
	const warmup, tries = time.Second, 5
	for try := range tries {
		var n, early atomic.Int64 // accepted; made again, and sent on before the window could begin
		began := time.Now()
		addr := shouttest.StreamServer(t, func(c net.Conn) {
			r := bufio.NewReader(c)
			if n.Add(1) <= 4 { // the run's first connections
				first(c, r)
				return
			}
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if time.Since(began) < warmup {
				early.Add(1)
			}
			if _, err := io.WriteString(c, upper(line)); err != nil {
				return
			}
			answerLines(c, r)
		})
		cfg := bench.Patient(quick("tcp", addr))
		cfg.Reconnect, cfg.Warmup, cfg.Duration = true, warmup, busyWindow
		rep = run(t, cfg)
		if n.Load() != 8 || early.Load() == 4 && rep.Messages > 0 {
			return rep, n.Load()
		}
		if early.Load() == 4 {
			t.Logf("run %d of at most %d: no message measured (a stall as long as the window): not all right, rightly", try+1, tries)
			continue
		}
		t.Logf("run %d of at most %d: %d of the 4 connections made again first sent after the warm-up's time (a stalled machine): their reconnects may be the window's", try+1, tries, 4-early.Load())
	}
	t.Fatalf("%d runs inconclusive: in each, a connection made again first sent after the warm-up's time, or no message was measured; a machine stalled that often, or a bench that reconnects a second late", tries)
	return nil, 0
}

// A reply the server cuts short by closing is wrong with Reconnect too:
// a graceful close answers whole what it read. Bench counted the message
// resent, cleared the half reply with the old connection, and called the
// run all right (a helper's faulty server: 20 half replies, "all right").
// A reply cut after its first byte is as wrong as one cut in half.
func TestReconnectCountsCutReplyWrong(t *testing.T) {
	t.Parallel()
	if goroutineDriver {
		t.Skip("reconnect needs the event-loop driver")
	}
	for _, tc := range []struct {
		name string
		cut  func(reply string) string
	}{
		{"half", func(reply string) string { return reply[:len(reply)/2] }},
		{"one byte", func(reply string) string { return reply[:1] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const conns = 4
			// The run ends once a connection made again sends: bench
			// counted the cut reply, then dialed. (In a run of 300 ms, on
			// a busy machine, a connection did not reach its 21st reply.)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var firsts atomic.Int64
			addr := scriptServer(t, func(i int, line string) (string, bool) {
				if i == 0 && firsts.Add(1) > conns {
					cancel()
				}
				up := upper(line)
				if i == 20 { // part of the 21st reply, then a graceful close
					return tc.cut(up), true
				}
				return up, false
			})
			cfg := quick("tcp", addr)
			cfg.Conns, cfg.Reconnect, cfg.Depth = conns, true, 1
			cfg.Duration = 10 * time.Second // a bound
			rep, err := bench.Run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() || rep.Mismatches == 0 {
				t.Errorf("replies cut short before each close: OK %v, %d wrong, %d resent; want wrong replies counted", rep.OK(), rep.Mismatches, rep.Resent)
			}
		})
	}
}

// The closes that refused service are counted (Unserved) while
// measuring only, as every count: here each of the run's first
// connections is closed at once in the warm-up, and every one made for
// them is served. They counted 4 unserved in a run that measured none.
func TestReconnectUnservedInWarmupNotCounted(t *testing.T) {
	t.Parallel()
	if goroutineDriver {
		t.Skip("reconnect needs the event-loop driver")
	}
	rep, accepted := runRedialedInWarmup(t, func(c net.Conn, _ *bufio.Reader) {
		closeGracefully(c)
	})
	if !rep.OK() || rep.Unserved != 0 || rep.Reconnects != 0 {
		t.Errorf("refusals in the warm-up only: OK %v, %d unserved, %d reconnects; want all right, 0 and 0: %+v", rep.OK(), rep.Unserved, rep.Reconnects, rep)
	}
	if accepted != 8 {
		t.Errorf("%d connections accepted, want 8: 4 refused, then 4 made again", accepted)
	}
}

// A connection counts as still being made again at the end (Unmade)
// only if it was: a run whose connections all stay up, with Reconnect or
// without, names none. Every connection closed at the end was counted.
func TestUnmadeOnlyWhenBeingMadeAgain(t *testing.T) {
	t.Parallel()
	addr := shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler)})
	for _, reconnect := range []bool{false, true} {
		if reconnect && goroutineDriver {
			continue // reconnect needs the event-loop driver
		}
		t.Run(fmt.Sprint("reconnect=", reconnect), func(t *testing.T) {
			cfg := quick("tcp", addr)
			cfg.Reconnect = reconnect
			rep := run(t, cfg)
			var out strings.Builder
			rep.WriteText(&out)
			if rep.Unmade != 0 || !strings.HasSuffix(out.String(), "  every reply checked: all right\n") {
				t.Errorf("%d unmade; want 0, and all right alone:\n%s", rep.Unmade, out.String())
			}
		})
	}
}

// oneThenGone is a stand-in stream server that takes one connection,
// stops listening (every later connect is refused), serves that one
// with handle and closes it. It returns its address. The port stays the
// test's (shouttest.ListenHeld): let go, a server of the tests running
// at once could be given it, and take the redials, which it counted as a
// stranger's connections (reset at the run's end).
func oneThenGone(t *testing.T, handle func(net.Conn)) string {
	ln := shouttest.ListenHeld(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		defer c.Close()
		handle(c)
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// Messages owed at a graceful close are resent only once a new
// connection is there to send them: here the server is gone, every
// redial is refused, and they are lost. They were counted resent and lost
// both, "16 messages owed at a graceful close were sent again" of a
// server that never took another connection.
func TestReconnectCountsResentOnlyWhenSent(t *testing.T) {
	t.Parallel()
	if goroutineDriver {
		t.Skip("reconnect needs the event-loop driver")
	}
	addr := oneThenGone(t, func(c net.Conn) { // closed gracefully after: every byte sent was read
		r := bufio.NewReader(c)
		for range 4 {
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
		}
	})
	cfg := quick("tcp", addr)
	cfg.Reconnect, cfg.Conns, cfg.Depth, cfg.Text = true, 1, 4, "ascii"
	cfg.ConnectTimeout, cfg.Duration = 300*time.Millisecond, 5*time.Second // cut short when the redial fails
	rep := run(t, cfg)
	if rep.Resent != 0 || rep.Lost != 4 || rep.Reconnects != 0 || rep.OK() {
		t.Errorf("%d resent, %d lost, %d reconnects, OK %v; want 0 resent, the 4 owed lost, none made again, not all right",
			rep.Resent, rep.Lost, rep.Reconnects, rep.OK())
	}
}

// A connection still being made again when the run stops (the server
// down at the end) is named, even in a run that is all right: the report
// said only "all right", with no server for the end of the run.
func TestReconnectNamesConnectionsUnmadeAtTheEnd(t *testing.T) {
	t.Parallel()
	if goroutineDriver {
		t.Skip("reconnect needs the event-loop driver")
	}
	addr := oneThenGone(t, func(c net.Conn) { // closed gracefully after, nothing owed
		if line, err := bufio.NewReader(c).ReadString('\n'); err == nil {
			io.WriteString(c, upper(line))
		}
	})
	cfg := quick("tcp", addr)
	cfg.Reconnect, cfg.Conns, cfg.Rate, cfg.Text = true, 1, 1, "ascii"   // one message, at the start
	cfg.ConnectTimeout, cfg.Duration = time.Minute, 500*time.Millisecond // the redial outlasts the run
	rep := run(t, cfg)
	var out strings.Builder
	rep.WriteText(&out)
	if rep.Unmade != 1 || rep.Messages != 1 || !strings.Contains(out.String(), "every reply checked: all right, 1 connection still being made again when the run stopped") {
		t.Errorf("%d unmade, %d replies; want 1 and 1, and the verdict to name it:\n%s", rep.Unmade, rep.Messages, out.String())
	}
}

// A connection being made again when the window ends, with a message
// owed that it would send again, whose redial gives up while bench waits
// for that reply (the server down at the end, and ConnectTimeout past
// the window) is named as still being made again at the stop, as one
// the loops close at the end is, also in the last line of a run not all
// right: its failure cleared the mark first, and "shout bench
// --reconnect" at a server stopped for good reported "0 connections
// made again", the owed lost, and nothing of a server down.
func TestReconnectNamesUnmadeWhoseRedialFailsInTheWait(t *testing.T) {
	t.Parallel()
	if goroutineDriver {
		t.Skip("reconnect needs the event-loop driver")
	}
	addr := oneThenGone(t, func(c net.Conn) { // closed gracefully, the message read and owed
		bufio.NewReader(c).ReadString('\n')
	})
	cfg := quick("tcp", addr)
	cfg.Reconnect, cfg.Conns, cfg.Depth, cfg.Text = true, 1, 1, "ascii"
	// The redial (after its 100 ms back-off) outlasts the window, and
	// fails within the wait for the reply owed.
	cfg.Duration, cfg.ConnectTimeout, cfg.Timeout = 100*time.Millisecond, 2*time.Second, time.Minute
	rep := run(t, cfg)
	var out strings.Builder
	rep.WriteText(&out)
	if rep.Unmade != 1 || rep.Lost != 1 || rep.Reconnects != 0 || !strings.Contains(out.String(), "; 1 still being made again when the run stopped;") ||
		!strings.HasSuffix(out.String(), ", 1 connection still being made again when the run stopped\n") {
		t.Errorf("%d unmade, %d lost, %d made again; want 1, 1 and 0, and the report to name it:\n%s", rep.Unmade, rep.Lost, rep.Reconnects, out.String())
	}
}

// A server that resets a connection while bench holds bytes it could not
// send yet: with Reconnect the connection is made again, and the reset
// is one error, not two.
//
// The run ends when the new connection has served a reply, not after a
// set time: under the race detector the first write alone, 16 MiB put
// together in fresh memory, took 2 to 3 s, and more on a busy machine,
// and the reset came after a 3 s run had stopped, when bench counts no
// error and makes no connection again.
func TestReconnectAfterResetWithUnsentBytes(t *testing.T) {
	t.Parallel()
	if goroutineDriver {
		t.Skip("reconnect needs the event-loop driver")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var n atomic.Int64
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		if n.Add(1) == 1 {
			// The client's first write, 16 MiB, is more than the socket
			// buffers take: by its first byte here, the rest waits in
			// bench. Reset then.
			c.Read(make([]byte, 1))
			c.(*net.TCPConn).SetLinger(0)
			return
		}
		r := bufio.NewReaderSize(c, 1<<20)
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			if _, err := c.Write(line); err != nil {
				return
			}
			cancel() // served on the new connection, which bench counted when it sent here
		}
	})
	cfg := quick("tcp", addr)
	// 16 MiB in the first write, in 64 KiB messages (few to make: under
	// the race detector, making 1 MiB ones took longer than the run).
	cfg.Conns, cfg.Depth, cfg.Size, cfg.Mode, cfg.Text = 1, 256, 64<<10, "echo", "ascii"
	cfg.Duration, cfg.Timeout, cfg.Reconnect = time.Minute, bound, true
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Reconnects == 0 || rep.Errors != 1 {
		t.Errorf("a reset with bytes unsent: %d reconnects, %d errors (%q); want a reconnect and one error", rep.Reconnects, rep.Errors, rep.FirstError)
	}
}

// A TLS server that accepts and never answers the handshake: the run
// fails within ConnectTimeout, not never.
func TestTLSHandshakeBoundedByConnectTimeout(t *testing.T) {
	t.Parallel()
	if goroutineDriver {
		t.Skip("once is enough")
	}
	hold := make(chan struct{})
	addr := shouttest.StreamServer(t, func(c net.Conn) { <-hold })
	t.Cleanup(func() { close(hold) })
	cfg := quick("tcp", addr)
	cfg.Endpoint = endpoint.Endpoint{Network: "tcp", Address: addr, TLS: true}
	cfg.TLS = &tls.Config{InsecureSkipVerify: true}
	cfg.ConnectTimeout = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	_, err := bench.Run(ctx, cfg)
	if err == nil || ctx.Err() != nil {
		t.Errorf("against a server that never handshakes: %v, with the test's own deadline %v", err, ctx.Err())
	}
}

// A churning run whose server has gone backs off between tries, as a
// reconnecting one does: it dialled again every 10 ms, about 100
// refusals a second for each worker, each an error, for the rest of the
// run. The server here takes the run's first connection (its check that
// the server is there) and is gone.
func TestChurnBacksOffFromAGoneServer(t *testing.T) {
	t.Parallel()
	if goroutineDriver {
		t.Skip("once is enough")
	}
	cfg := quick("tcp", oneThenGone(t, func(net.Conn) {}))
	cfg.Churn, cfg.Depth, cfg.Conns = true, 1, 2
	cfg.Duration = time.Second
	rep := run(t, cfg)
	// Tries 100, 200, 400 and 800 ms apart, at most: 4 or 5 a worker in
	// the second, fewer if the machine is slow, and 10 only if the run's
	// end came 20 s late; without the back-off about 100 each.
	if rep.Errors == 0 || rep.Errors > 20 || rep.OK() {
		t.Errorf("%d errors (the first %q) in a second's churn against a server gone; want a few, and the run not all right", rep.Errors, rep.FirstError)
	}
}

// Interrupting a churning run counts nothing the interruption cut short
// as an error or a loss. The interruption comes at the tenth handshake,
// mid-run: the first is the run's check that the server is there, and
// measuring begins after it. (A timer of 200 ms came, on a busy machine,
// before the check had ended, and the run ended without a report.)
func TestChurnInterruptCountsNoErrors(t *testing.T) {
	if goroutineDriver {
		t.Skip("once is enough")
	}
	e, client := tlsServer(t)
	for range 5 {
		ctx, cancel := context.WithCancel(context.Background())
		var handshakes atomic.Int64
		tlsCfg := client.Clone()
		tlsCfg.VerifyConnection = func(tls.ConnectionState) error {
			if handshakes.Add(1) == 10 {
				cancel() // Ctrl-C, mid-run
			}
			return nil
		}
		// Patient: a reply later than Timeout is lost (or an error),
		// interrupted or not, and a busy machine's stall made one so:
		// "0 errors, 1 lost", its exchange's "no reply within 2s",
		// which says nothing of the interruption.
		cfg := bench.Patient(quick("tcp", ""))
		cfg.Endpoint, cfg.TLS, cfg.Churn, cfg.Depth, cfg.Conns = e, tlsCfg, true, 1, 32
		cfg.Duration = time.Minute
		rep, err := bench.Run(ctx, cfg)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if rep.Errors > 0 || rep.Lost > 0 {
			t.Errorf("interrupted churn: %d errors (%q), %d lost", rep.Errors, rep.FirstError, rep.Lost)
		}
	}
}

// An open loop that outruns a slow UDP server has more datagrams in
// flight within Timeout than a socket remembers at first: it remembers
// more, and counts none of them lost that the server answers in time.
// (Each socket remembered 16,384, and counted the oldest lost when its
// ring wrapped onto them; here it starts with 64.)
//
// The server tells the datagrams apart by their sequence numbers: with
// one socket and no warm-up, the measured ones are the first
// Messages+Lost, and what it never got of those is truly lost. (A count
// of every datagram it got, with those sent after measuring ended,
// which are neither replies nor lost, took them for measured ones it
// never got: a busy machine's server dropped a few dozen, and they were
// blamed on bench.) It also tells that the ring was outrun, as it must
// be for the test to test anything: a datagram came while the one 64
// before it, measured too, was not yet answered. (At least 500 replies
// stood for that, and a starved sender, which sends what fell due late
// and after measuring ends, had 235 measured.)
func TestUDPOpenLoopOutrunsTheRing(t *testing.T) {
	if goroutineDriver {
		t.Skip("UDP has one driver")
	}
	const ring = 64
	defer bench.SetUDPRing(ring)()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	answered := map[uint64]bool{} // each datagram got, by sequence number: answered yet
	var outran []uint64           // got while the one ring before was not answered
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done; wg.Wait() })
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			seq, err := strconv.ParseUint(string(buf[:min(n, 20)]), 10, 64)
			if err != nil {
				t.Errorf("a datagram without a sequence number: %q", buf[:n])
				continue
			}
			mu.Lock()
			answered[seq] = false
			if a, ok := answered[seq-ring]; seq >= ring && ok && !a {
				outran = append(outran, seq)
			}
			mu.Unlock()
			reply := bytes.ToUpper(buf[:n])
			wg.Add(1)
			time.AfterFunc(200*time.Millisecond, func() { // every reply 200 ms late
				defer wg.Done()
				mu.Lock()
				answered[seq] = true // before it is sent: bench cannot have it yet
				mu.Unlock()
				pc.WriteTo(reply, from)
			})
		}
	}()
	cfg := quick("udp", pc.LocalAddr().String())
	cfg.Conns, cfg.Text, cfg.Rate = 1, "ascii", 2000        // about 400 in flight
	cfg.Duration, cfg.Timeout = 500*time.Millisecond, bound // far past the 200 ms, on a loaded machine too
	rep := run(t, cfg)
	// What the server never got (its socket's buffer full) is truly lost,
	// and so is what bench's own socket dropped on a machine too busy for
	// it to read; the server answered all it got 200 ms later, well within
	// the timeout.
	measured := uint64(rep.Messages + rep.Lost) // sequence numbers 0 to measured-1
	mu.Lock()
	var got, after, outrun int64
	for seq := range answered {
		if seq < measured {
			got++
		} else {
			after++
		}
	}
	for _, seq := range outran {
		if seq < measured {
			outrun++
		}
	}
	mu.Unlock()
	if never := int64(measured) - got; rep.Lost > never+rep.DroppedByBench || outrun == 0 {
		t.Errorf("%d replies, %d lost, of which %d never reached the server and %d were dropped by bench's socket; "+
			"it got %d of the %d measured (and %d after), answered each 200 ms later, and got %d while the one %d before was unanswered",
			rep.Messages, rep.Lost, never, rep.DroppedByBench, got, measured, after, outrun, ring)
	}
}

// Throughput is what the server served while measuring, not the replies to
// the window's messages over the window: an open loop faster than the
// server, or a closed loop with more in flight than the window serves,
// had those that came in the wait at the end counted as if they had come
// in the window, and showed more than the server can do.
func TestThroughputIsWhatCameWhileMeasuring(t *testing.T) {
	t.Parallel()
	const perReply = 2 * time.Millisecond // at most 500 replies a second
	addr := shouttest.StreamServer(t, func(c net.Conn) { answerAfter(c, perReply) })
	for _, tc := range []struct {
		name  string
		rate  float64
		depth int
	}{
		{"open loop at twice the server's rate", 1000, 1},
		{"closed loop, more in flight than the window serves", 0, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := bench.Patient(quick("tcp", addr)) // no warm-up; none lost to a stall
			cfg.Conns, cfg.Depth, cfg.Text, cfg.Rate = 1, tc.depth, "ascii", tc.rate
			cfg.Duration, cfg.Timeout = 500*time.Millisecond, 5*time.Second
			rep := run(t, cfg)
			if limit := 1.1 * float64(time.Second/perReply); rep.MessagesPerSec > limit || rep.MessagesPerSec == 0 || !rep.OK() {
				t.Errorf("%.0f msg/s (%d messages, %.2fs waited for at the end, OK %v) from a server that answers at most %.0f a second",
					rep.MessagesPerSec, rep.Messages, rep.DrainS, rep.OK(), limit/1.1)
			}
		})
	}
}

// An open loop against a server that takes fewer bytes than fall due
// holds at most a little of them: the event loops held all of it, and a
// --rate beyond what the server takes grew bench's memory until it died
// (1.2 GB in 2 s); the goroutine driver, behind, wrote 1,024 messages at
// once, whatever their size (100 MB of 100 KB ones).
func TestOpenLoopBacklogIsBounded(t *testing.T) {
	t.Run("server reads nothing", func(t *testing.T) {
		addr := shouttest.StreamServer(t, func(c net.Conn) {
			<-t.Context().Done() // reads nothing; held open
		})
		cfg := quick("tcp", addr)
		// 100 MB a second: 30 MB falls due before the server's silence
		// ends the connection.
		cfg.Conns, cfg.Size, cfg.Rate, cfg.Timeout = 1, 1000, 100000, 300*time.Millisecond
		openLoopHeld(t, cfg)
	})
	t.Run("server reads slowly", func(t *testing.T) {
		t.Cleanup(bench.SetMessagesHeld(2 * 100000))
		addr := shouttest.StreamServer(t, func(c net.Conn) {
			buf := make([]byte, 64<<10)
			for { // takes about 6 MB a second, answers nothing
				if _, err := c.Read(buf); err != nil {
					return
				}
				select {
				case <-t.Context().Done():
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		})
		cfg := quick("tcp", addr)
		// 10 GB a second falls due, 100 KB messages.
		cfg.Conns, cfg.Size, cfg.Rate, cfg.Timeout = 1, 100000, 100000, 300*time.Millisecond
		openLoopHeld(t, cfg)
	})
}

// openLoopHeld runs cfg and fails t if bench's heap grew by more than a
// few MB meanwhile.
func openLoopHeld(t *testing.T, cfg bench.Config) {
	t.Helper()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	done := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var most uint64
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			most = max(most, m.HeapAlloc)
			select {
			case <-done:
				peak <- most
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	rep, err := bench.Run(context.Background(), cfg)
	close(done)
	grew := int64(<-peak) - int64(before.HeapAlloc)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		t.Errorf("a server that answers nothing passed: %+v", rep)
	}
	if grew > 12<<20 {
		t.Errorf("bench's heap grew by %d MB while the server fell behind; want a few", grew>>20)
	}
}

// A Config that Run cannot honour is refused before it starts, as an
// unknown Mode is: a Text it does not know would otherwise send ASCII
// text under another name, and a datagram Size too small for the
// sequence number would send larger messages than the report says.
func TestRunRefusesWhatItCannotDo(t *testing.T) {
	t.Parallel()
	addr := shouttest.Start(t, &server.Server{Logger: slog.New(slog.DiscardHandler)})
	manyConns, manyHeld := int(min(1<<38, math.MaxInt)), "36893488147419103232"
	if strconv.IntSize == 32 {
		manyHeld = "288230376017494016" // (2^31-1) × 2 × 2^26
	}
	for _, tc := range []struct {
		name string
		cfg  func(bench.Config) bench.Config
		want string
	}{
		{"unknown text", func(c bench.Config) bench.Config { c.Text = "utf-8"; return c }, `bench: unknown text "utf-8" (want one of utf8, ascii)`},
		{"udp size too small", func(c bench.Config) bench.Config {
			c.Endpoint.Network, c.Size = "udp", 20
			return c
		}, "bench: a datagram of 20 bytes cannot hold the 20-digit sequence number and a byte of text: Size must be at least 21 over UDP"},
		// Every one of these ran before: every datagram an error; a rate
		// that was no rate (NaN sent 16 messages and called it all right;
		// too low a rate overflowed into no pacing at all); and more
		// memory than the machine has, until the kernel killed the test.
		{"udp size too large", func(c bench.Config) bench.Config {
			c.Endpoint.Network, c.Size = "udp", bench.MaxDatagram+1
			return c
		}, "bench: Size 65508 is more than a UDP datagram carries (65507 bytes)"},
		{"size too large", func(c bench.Config) bench.Config { c.Size = bench.MaxSize + 1; return c },
			"bench: Size 67108865 is more than 67108864 (64 MiB): bench holds each message and its reply whole"},
		{"depth too large", func(c bench.Config) bench.Config { c.Depth = bench.MaxDepth + 1; return c },
			"bench: Depth 4097 is more than 4096"},
		{"too much held", func(c bench.Config) bench.Config { c.Conns, c.Depth, c.Size = 2, bench.MaxDepth, 1<<20; return c },
			"bench: Conns × (Depth + 1) × Size is 8592031744 bytes, more than bench will hold in memory (4 GiB)"},
		{"too many source addresses", func(c bench.Config) bench.Config { c.SourceIPs = 256; return c },
			"bench: SourceIPs 256 is more than the 255 addresses from 127.0.0.1 to 127.0.0.255"},
		// 2^38 × 2 × 2^26 is 2^65, which int64 wrapped to 0: let through.
		// Where int is 32 bits (GOARCH=386) Conns is at most 2^31-1, and
		// the product still passes what int holds.
		{"held past int", func(c bench.Config) bench.Config { c.Conns, c.Depth, c.Size = manyConns, 1, bench.MaxSize; return c },
			"bench: Conns × (Depth + 1) × Size is " + manyHeld + " bytes, more than bench will hold in memory (4 GiB)"},
		{"rate nan", func(c bench.Config) bench.Config { c.Rate = math.NaN(); return c },
			"bench: Rate NaN is not a number of messages per second"},
		{"rate inf", func(c bench.Config) bench.Config { c.Rate = math.Inf(1); return c },
			"bench: Rate +Inf is not a number of messages per second"},
		{"rate too low", func(c bench.Config) bench.Config { c.Rate = 1e-12; return c },
			"bench: Rate 1e-12 is too low: a connection would send once in more than 30 years"},
		// A connection's interval under a nanosecond: the event loops sent
		// one a nanosecond, a lower rate than asked, and the goroutine
		// driver's (UDP) schedule never moved on, every message it sent
		// counted never sent too (32,768 answered and 200,000,000 never
		// sent of a run of 200 ms at 1e11 a second).
		{"rate too high", func(c bench.Config) bench.Config { c.Rate = 1e11; return c },
			"bench: Rate 1e+11 is too high: a connection would send more than one message a nanosecond"},
		// shout bench refuses these too: Churn over UDP panicked (a
		// worker indexed the stream messages a UDP run has none of), and
		// Churn with a Rate ran a closed loop reported as an open one.
		{"churn over udp", func(c bench.Config) bench.Config { c.Endpoint.Network, c.Churn = "udp", true; return c },
			"bench: Churn is for TCP, TLS and Unix sockets: UDP has no connections"},
		{"churn with a rate", func(c bench.Config) bench.Config { c.Churn, c.Rate = true, 100; return c },
			"bench: Churn sends one message per connection, in a closed loop: Rate does not apply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := bench.Run(context.Background(), tc.cfg(quick("tcp", addr)))
			if err == nil {
				t.Fatalf("ran (settings %+v), want %q", rep.Settings, tc.want)
			}
			if err.Error() != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	// The names Texts lists, in any case, and the smallest datagram, run;
	// a mode in any case is reported as it is listed.
	for _, cfg := range []bench.Config{
		func() bench.Config { c := quick("tcp", addr); c.Text = "ASCII"; c.Mode = "Upper"; return c }(),
		func() bench.Config { c := quick("udp", addr); c.Size = 21; return c }(),
	} {
		cfg = bench.Patient(cfg)
		cfg.Duration = busyWindow
		rep := run(t, cfg)
		if !rep.OK() {
			t.Errorf("%+v: not OK: %+v", cfg.Settings(), rep.Settings)
		}
		if rep.Settings.Mode != "upper" || rep.Settings.Text != strings.ToLower(rep.Settings.Text) {
			t.Errorf("%+v: reported as %+v, want the mode and text as listed", cfg.Settings(), rep.Settings)
		}
	}
}

// The header says what the run does: a rate under one a second as it is
// (it said "open loop at 0 msg/s" for 0.5), UDP's sockets as sockets, and
// only the source addresses the connections come from (one connection
// came "from 127.0.0.1-16").
func TestHeaderSaysWhatRuns(t *testing.T) {
	header := func(c bench.Config) string {
		var b strings.Builder
		c.Settings().WriteHeader(&b)
		return b.String()
	}
	for _, tc := range []struct {
		name string
		cfg  bench.Config
		want []string
		not  []string
	}{
		{"half a message a second", bench.Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: "127.0.0.1:1"}, Conns: 1, Rate: 0.5},
			[]string{"open loop at 0.5 msg/s", "1 conn,"}, []string{"from 127.0.0.1-"}},
		{"one socket", bench.Config{Endpoint: endpoint.Endpoint{Network: "udp", Address: "127.0.0.1:1"}, Conns: 1},
			[]string{": 1 socket,"}, nil},
		// An open loop takes no --depth (it is a usage error with
		// --rate): it said "depth 1, open loop at 1000000 msg/s".
		{"four connections", bench.Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: "127.0.0.1:1"}, Conns: 4, Rate: 1e6},
			[]string{"open loop at 1000000 msg/s", "4 conns from 127.0.0.1-4,"}, []string{"depth"}},
		{"closed loop", bench.Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: "127.0.0.1:1"}, Depth: 8},
			[]string{"depth 8, closed loop"}, nil},
		{"udp", bench.Config{Endpoint: endpoint.Endpoint{Network: "udp", Address: "127.0.0.1:1"}, Conns: 16},
			[]string{"16 sockets from 127.0.0.1-16,", "closed loop"}, []string{"conns"}},
		// Over UDP no connection: its bound is the socket's set-up. It
		// said "connecting within 5s".
		{"udp's set-up", bench.Config{Endpoint: endpoint.Endpoint{Network: "udp", Address: "localhost:1"}},
			[]string{"replies due within 5s, each socket set up (a name looked up) within 5s: UDP makes no connection\n"}, []string{"connecting"}},
		// Durations as Go writes them: it said "replies due within 0.0002s".
		{"durations", bench.Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: "127.0.0.1:1"}, Duration: 1500 * time.Millisecond, Timeout: 200 * time.Microsecond},
			[]string{"1.5s measured after 1s warm-up, replies due within 200µs, connecting within 5s"}, nil},
		// The longest a Duration holds (someone's "never"), as float64
		// seconds, rounds up past it: it said "-2562047h47m16.854775808s
		// measured after -2562047h47m16.854775808s warm-up".
		{"longest durations", bench.Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: "127.0.0.1:1"}, Duration: math.MaxInt64, Warmup: math.MaxInt64, Timeout: math.MaxInt64, ConnectTimeout: math.MaxInt64},
			[]string{"2562047h47m16.854775807s measured after 2562047h47m16.854775807s warm-up, replies due within 2562047h47m16.854775807s, connecting within 2562047h47m16.854775807s"}, []string{"-2562047h"}},
	} {
		h := header(tc.cfg)
		for _, w := range tc.want {
			if !strings.Contains(h, w) {
				t.Errorf("%s: header %q lacks %q", tc.name, h, w)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(h, n) {
				t.Errorf("%s: header %q has %q", tc.name, h, n)
			}
		}
	}
}

// A reply later than Timeout after its message was sent is lost, however
// bench came to wait for it: here a server answers one line each 50 ms, so
// a pipelined connection's replies never stop coming, each later than the
// last, and no wait for one lasts the 1 s timeout. Before, every reply
// counted as on time (the largest latency near 1.6 s) and only those the
// final wait gave up on were lost. (With a timeout of 300 ms, a busy
// machine's stall past it failed the connections before a late reply
// came: 32 lost, 0 late.)
func TestLateRepliesAreLost(t *testing.T) {
	t.Parallel()
	// silent is the longest the server was, by its clock, between a
	// connection's first line and its first reply, or a reply and the
	// next.
	var mu sync.Mutex
	var silent time.Duration
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		lines := bufio.NewReader(c)
		var last time.Time
		for {
			line, err := lines.ReadBytes('\n')
			if err != nil {
				return
			}
			if last.IsZero() {
				last = time.Now()
			}
			time.Sleep(50 * time.Millisecond) // the slow server under test
			if _, err := c.Write(line); err != nil {
				return
			}
			now := time.Now()
			mu.Lock()
			silent = max(silent, now.Sub(last))
			mu.Unlock()
			last = now
		}
	})
	cfg := quick("tcp", addr)
	cfg.Conns, cfg.Depth, cfg.Mode, cfg.Text = 2, 32, "echo", "ascii"
	cfg.Timeout, cfg.Duration = time.Second, 600*time.Millisecond
	// Again, up to five times, while the server was silent for the
	// timeout, or a connection failed for silence: the server answers
	// every 50 ms, so a stall past the timeout came between, and the run
	// says nothing of how a late reply counts.
	rep := runUntilMeasured(t, cfg, func(rep *bench.Report) bool {
		mu.Lock()
		longest := silent
		silent = 0
		mu.Unlock()
		if longest >= cfg.Timeout || rep.Errors > 0 {
			t.Logf("the server was silent for %v at most; %d errors (the first %q)", longest, rep.Errors, rep.FirstError)
			return false
		}
		return true
	})
	if rep.OK() || rep.Lost == 0 || rep.Late == 0 || rep.Late > rep.Lost {
		t.Errorf("replies each up to 1.6 s late: OK %v, %d lost, %d late; want not all right, some lost, and some of them late", rep.OK(), rep.Lost, rep.Late)
	}
	noLateOnTime(t, rep, cfg.Timeout)
}

// noLateOnTime checks that no reply later than timeout was timed in rep.
// The histograms keep three significant digits and say the top of a
// value's bucket: a reply on time, up to timeout, shows at most the top
// of timeout's (1.000447 s for 1 s).
func noLateOnTime(t *testing.T, rep *bench.Report, timeout time.Duration) {
	t.Helper()
	us := timeout.Microseconds()
	h := hdrhistogram.New(1, us, 3) // as bench's, to three digits
	h.RecordValue(us)
	onTime := h.Max()
	if max := int64(rep.LatencyUS.Max); max > onTime {
		t.Errorf("a reply %v late counted as on time (timeout %v, at most %v as the histograms hold it)",
			time.Duration(max)*time.Microsecond, timeout, time.Duration(onTime)*time.Microsecond)
	}
}

// A datagram answered later than Timeout is lost and late, as a stream
// reply is: here the stand-in answers the first datagram 400 ms late,
// with a timeout of 100 ms, and every other at once. It was passed over
// once later datagrams had taken its place in the socket's ring, which
// at tens of thousands a second holds less than a second of them: a
// reply later than the default timeout was almost never known to be late.
func TestLateDatagramIsLostAndLate(t *testing.T) {
	defer bench.SetUDPRing(16)() // it grows to about Timeout's worth, and the reply comes after four
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	wg.Go(func() {
		buf := make([]byte, 65536)
		for n := 0; ; n++ {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			reply := bytes.ToUpper(buf[:k])
			if n == 0 {
				wg.Go(func() {
					time.Sleep(400 * time.Millisecond) // the one slow answer under test
					pc.WriteTo(reply, from)
				})
				continue
			}
			pc.WriteTo(reply, from)
		}
	})
	cfg := quick("udp", pc.LocalAddr().String())
	cfg.Conns, cfg.Depth, cfg.Text = 1, 4, "ascii" // bytes.ToUpper's uppercase
	cfg.Timeout, cfg.Duration = 100*time.Millisecond, 1500*time.Millisecond
	rep := run(t, cfg)
	if rep.OK() || rep.Late == 0 || rep.Lost < rep.Late || rep.Mismatches != 0 {
		t.Errorf("one reply 400 ms late, timeout 100 ms: OK %v, %d lost, %d late, %d wrong; want not all right, it lost and late, none wrong", rep.OK(), rep.Lost, rep.Late, rep.Mismatches)
	}
	noLateOnTime(t, rep, cfg.Timeout)
}

// An open loop over UDP times each datagram from its send: the send never
// waits for the server, so a send later than due is bench's own lateness
// (a timer that woke late), not the server's. Timed from due, it was put
// on the server: here the first datagram's 2 s, against a server that
// answers at once. (A delay so long that no loopback reply could take
// it: the bound tells bench's lateness from the server's latency.)
func TestUDPOpenLoopTimesFromTheSend(t *testing.T) {
	defer bench.DelayFirstUDPSend(2 * time.Second)()
	addr, drops := udpStandIn(t, func(_ int, b []byte) [][]byte { return [][]byte{b} })
	cfg := bench.Patient(quick("udp", addr)) // (none lost to a stall)
	cfg.Conns, cfg.Rate, cfg.Text = 1, 20, "ascii"
	cfg.Duration, cfg.Timeout = 3*time.Second, 5*time.Second
	rep := run(t, cfg)
	if !checkLostToKernel(t, rep, drops).OK() || rep.Messages < 2 {
		t.Fatalf("%d messages, OK %v; want a run with every reply right", rep.Messages, rep.OK())
	}
	if max := time.Duration(rep.LatencyUS.Max) * time.Microsecond; max >= 2*time.Second {
		t.Errorf("latency max %v: bench's own 2 s late send was put on the server", max)
	}
}

// A reply later than Timeout that comes in bench's wait at the end, before
// its datagram was counted lost, is lost and late, and not also
// reordered: the counts are apart, and a late reply counted lost before
// it came was never counted reordered. Here the first datagram's reply
// comes 2.5 s after it, with a timeout of 2 s and 1 s measured, so in the
// wait, after the replies to the datagrams sent after it.
func TestLateDatagramInTheFinalWaitIsNotReordered(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	wg.Go(func() {
		buf := make([]byte, 65536)
		for n := 0; ; n++ {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			reply := bytes.ToUpper(buf[:k])
			if n == 0 {
				wg.Go(func() {
					time.Sleep(2500 * time.Millisecond) // later than the timeout, within the wait at the end
					pc.WriteTo(reply, from)
				})
				continue
			}
			pc.WriteTo(reply, from)
		}
	})
	cfg := quick("udp", pc.LocalAddr().String())
	cfg.Conns, cfg.Depth, cfg.Text = 1, 2, "ascii"
	cfg.Timeout, cfg.Duration = 2*time.Second, time.Second
	rep := run(t, cfg)
	if rep.Late != 1 || rep.Lost != 1 {
		t.Skipf("the reply did not come within the wait at the end (%d lost, %d late): the machine was too slow for what this test needs", rep.Lost, rep.Late)
	}
	if rep.Reordered != 0 {
		t.Errorf("%d reordered; want the late reply counted lost and late only", rep.Reordered)
	}
}

// A report says which lost replies came late, and a run whose every
// reply came late says so, not that no reply came back: that is what it
// said of a server that answered every message, 50 ms after the last.
func TestLateRepliesSaySo(t *testing.T) {
	settings := bench.Settings{Network: "tcp", TimeoutS: 0.2, DurationS: 2}
	for _, tc := range []struct {
		name string
		rep  bench.Report
		want []string
	}{
		{"every reply late", bench.Report{Settings: settings, Lost: 80, Late: 80},
			[]string{"80 lost (each came later than the timeout, 200ms)", "(of the replies within the timeout; 80 came later)",
				"not all right: no reply came within the timeout, 200ms, 80 lost (80 came later than the timeout, 200ms)"}},
		{"some late", bench.Report{Settings: settings, Messages: 10, Lost: 30, Late: 20},
			[]string{"30 lost (20 came later than the timeout, 200ms, the rest owed when a connection failed or the run ended)"}},
		{"none late", bench.Report{Settings: settings, Messages: 10, Lost: 30},
			[]string{"30 lost (owed when a connection failed or the run ended)", "not all right: 30 lost\n"}},
		{"udp", bench.Report{Settings: bench.Settings{Network: "udp", TimeoutS: 1}, Messages: 10, Lost: 3, Late: 2},
			[]string{"3 lost, 0 duplicated, 0 reordered (2 came later than the timeout, 1s)"}},
	} {
		var out strings.Builder
		tc.rep.WriteText(&out)
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: the report lacks %q:\n%s", tc.name, w, out.String())
			}
		}
		if strings.Contains(out.String(), "no reply came back") {
			t.Errorf("%s: the report says no reply came back:\n%s", tc.name, out.String())
		}
	}
}

// A run too short for one message to go out says so: --duration 1ns
// said "no reply came back" of a server that answered every message.
func TestNothingSentSaysSo(t *testing.T) {
	udpSettings := bench.Settings{Network: "udp", Conns: 2, Depth: 1, DurationS: 1, TimeoutS: 5}
	deeper := udpSettings
	deeper.Depth = 4
	udpOpenLoop := udpSettings
	udpOpenLoop.Rate = 5
	for _, tc := range []struct {
		name string
		rep  bench.Report
		want string
	}{
		{"nothing sent", bench.Report{Settings: bench.Settings{Network: "tcp", DurationS: 1e-9}},
			"not all right: no message was sent in the 1ns measured, too short for one exchange\n"},
		{"sent, no reply", bench.Report{Settings: bench.Settings{Network: "tcp", DurationS: 1}, Lost: 3},
			"not all right: no reply came back, 3 lost"},
		{"failed", bench.Report{Settings: bench.Settings{Network: "tcp", DurationS: 1}, Errors: 1},
			"not all right: no reply came back, 1 error"},
		// The warm-up's datagrams unanswered (WarmupLost) say why a closed
		// loop sent nothing, and only that: not of a run that sent, one
		// cut short or interrupted, one whose wait at the end was cut
		// (given up then, within their Timeout), nor an open loop's,
		// which waits for no reply.
		{"warm-up replies missing", bench.Report{Settings: udpSettings, WarmupLost: 2},
			"not all right: no message was sent in the 1s measured: every socket waited for the replies to its warm-up datagrams, and 2 replies never came within the timeout, 5s\n"},
		{"sent, warm-up replies missing", bench.Report{Settings: udpSettings, Messages: 10, Lost: 1, WarmupLost: 2},
			"not all right: 1 lost\n"},
		{"cut short, warm-up replies missing", bench.Report{Settings: udpSettings, WarmupLost: 2, CutShort: "every socket had failed", MeasuredS: 0.5},
			"not all right: no reply came back (over UDP, a reply counts only from the address and port the datagrams went to), cut short after 0.50s of 1s (every socket had failed)\n"},
		{"wait cut, warm-up replies missing", bench.Report{Settings: udpSettings, WarmupLost: 2, WaitCut: true},
			"not all right: no message was sent in the 1s measured, too short for one exchange\n"},
		{"interrupted, warm-up replies missing", bench.Report{Settings: udpSettings, WarmupLost: 2, Interrupted: true},
			"not all right: no message was sent in the 1s measured, too short for one exchange\n"},
		{"open loop, warm-up replies missing", bench.Report{Settings: udpOpenLoop, WarmupLost: 2},
			"not all right: no message was sent in the 1s measured, too short for one exchange\n"},
		// Nor of a window too short for one exchange (1ns) in which a
		// socket had a place free: each of the 2 sockets has 4, and one
		// datagram of the warm-up's got no reply. Every socket waits only
		// when each of its places holds one of the warm-up's unanswered.
		{"places free, warm-up replies missing", bench.Report{Settings: deeper, WarmupLost: 7},
			"not all right: no message was sent in the 1s measured, too short for one exchange\n"},
		{"no place free, warm-up replies missing", bench.Report{Settings: deeper, WarmupLost: 8},
			"not all right: no message was sent in the 1s measured: every socket waited for the replies to its warm-up datagrams, and 8 replies never came within the timeout, 5s\n"},
		{"a socket failed in the warm-up, the rest's replies missing", bench.Report{Settings: deeper, WarmupLost: 4, Unmeasured: 1},
			"not all right: no message was sent in the 1s measured: every socket waited for the replies to its warm-up datagrams, and 4 replies never came within the timeout, 5s, 1 of 2 sockets measured, 1 failed in the warm-up\n"},
	} {
		var out strings.Builder
		tc.rep.WriteText(&out)
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("%s: the report:\n%s\nwant %q", tc.name, out.String(), tc.want)
		}
	}
}

// A count of one is said in the singular, as "1 reply duplicated" was:
// the report said "1 errors", "1 connections made again".
func TestReportSaysOneInTheSingular(t *testing.T) {
	settings := bench.Settings{Network: "tcp", DurationS: 1, TimeoutS: 1, Reconnect: true}
	for _, tc := range []struct {
		name string
		rep  bench.Report
		want []string
	}{
		{"one of each", bench.Report{Settings: settings, Messages: 10, Errors: 1, Reconnects: 1, Resent: 1, WarmupErrors: 1, FirstWarmupError: "x", Unsent: 1},
			[]string{"; 1 error\n", "1 connection made again", "1 message owed at a graceful close was sent again",
				"warm-up   1 error before measuring", "1 message fell due while measuring and was never sent", "not all right: 1 error, "}},
		{"all right", bench.Report{Settings: settings, Messages: 10, Reconnects: 1},
			[]string{"all right, over 1 connection made again"}},
		{"two of each", bench.Report{Settings: settings, Messages: 10, Errors: 2, Reconnects: 2, Resent: 2, WarmupErrors: 2, FirstWarmupError: "x", Unsent: 2},
			[]string{"; 2 errors\n", "2 connections made again", "2 messages owed at a graceful close were sent again",
				"warm-up   2 errors before measuring", "2 messages fell due while measuring and were never sent", "not all right: 2 errors, "}},
	} {
		var out strings.Builder
		tc.rep.WriteText(&out)
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: the report lacks %q:\n%s", tc.name, w, out.String())
			}
		}
	}
}

// A connection that failed in the warm-up is gone while measuring only
// where none is made again: with --reconnect it was made again, and with
// --churn it was one message's own, but the report said of both that it
// "was not there while measuring", as it did of a UDP socket, which a
// receive error does not end.
func TestWarmupErrorsSayWhatBecameOfTheConnection(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings bench.Settings
		want     string
	}{
		{"tcp", bench.Settings{Network: "tcp"}, " (a connection that failed then was not there while measuring)"},
		{"udp", bench.Settings{Network: "udp"}, ""},
		{"reconnect", bench.Settings{Network: "tcp", Reconnect: true}, " (a connection that failed then was made again)"},
		{"churn", bench.Settings{Network: "tcp", Churn: true}, " (each on a connection of its own)"},
	} {
		tc.settings.DurationS, tc.settings.TimeoutS = 1, 1
		rep := bench.Report{Settings: tc.settings, Messages: 10, WarmupErrors: 1, FirstWarmupError: "x"}
		var out strings.Builder
		rep.WriteText(&out)
		if !strings.Contains(out.String(), "warm-up   1 error before measuring, in no count above"+tc.want+"; the first: x\n") {
			t.Errorf("%s: the report:\n%s\nwant %q", tc.name, out.String(), tc.want)
		}
	}
}

// Empty is a run that counted nothing at all; any one count makes it not
// empty (shout bench takes a Ctrl-C that came before anything was
// counted for one before anything was measured, status 130).
func TestReportEmpty(t *testing.T) {
	if !(&bench.Report{}).Empty() {
		t.Error("a report with no count is not Empty")
	}
	for name, rep := range map[string]bench.Report{
		"answered": {Messages: 1}, "late": {Late: 1}, "lost": {Lost: 1}, "error": {Errors: 1},
		"wrong": {Mismatches: 1}, "never sent": {Unsent: 1},
	} {
		if rep.Empty() {
			t.Errorf("%s: Empty, though it counted a message", name)
		}
	}
}

// runPastLongReply runs cfg, whose server answers the fourth message
// with a long line, until more than five replies came, so that replies
// after the long one are in the report: again, at most five times,
// while the window ended before they came (a stall of the machine).
func runPastLongReply(t *testing.T, cfg bench.Config) *bench.Report {
	t.Helper()
	var rep *bench.Report
	for try := range 5 {
		if rep = run(t, cfg); rep.Messages > 5 {
			break
		}
		t.Logf("run %d of at most 5: %d replies in its %v window", try+1, rep.Messages, cfg.Duration)
	}
	return rep
}

// A reply far longer than the right one is one wrong reply, up to its
// newline, as bytes that answer no message are one a line: checked once
// four times the wanted length came, it was taken to end there, and the
// rest of its line for the replies to the messages after it, each one
// more wrong reply, and in a closed loop one more message sent. A server
// that answered one message of a run with a megabyte's line was said to
// have answered thousands, every one wrong (with the goroutine driver,
// 95,741 messages and 95,743 wrong replies in 2 s from a server that had
// sent a few lines of 50 MB).
func TestLongReplyIsOneWrongReply(t *testing.T) {
	t.Parallel()
	addr := scriptServer(t, func(i int, line string) (string, bool) {
		if i == 3 {
			return strings.Repeat("Z", 1<<20) + "\n", false
		}
		return upper(line), false
	})
	cfg := quick("tcp", addr)
	cfg.Conns, cfg.Depth, cfg.Text, cfg.Duration = 1, 1, "ascii", busyWindow
	rep := runPastLongReply(t, cfg)
	if rep.Mismatches != 1 || rep.MismatchesAfter != 0 || rep.Errors != 0 || rep.Messages <= 5 {
		t.Errorf("%d replies, %d wrong (%d after an earlier one; the first %q), %d errors (the first %q); want the long one wrong, alone, and the replies after it right",
			rep.Messages, rep.Mismatches, rep.MismatchesAfter, rep.FirstMismatch, rep.Errors, rep.FirstError)
	}
}

// A reply cut at the cap and the rest of its line skipped, at its edges:
// one exactly as long as the cap, its newline its last byte, is whole and
// nothing after it is skipped; one a byte longer is cut and its newline
// alone skipped; a long one ended by "\r\n", in UTF-8 text, with a
// Size whose cap is more than the goroutine driver's buffer, or with
// right replies behind it in the same write (depth 4), is one wrong
// reply and the replies after it are right, in both drivers.
func TestCutReplyEdges(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		text  string
		size  int
		depth int
		long  func(cap int) string // the reply to the fourth message
	}{
		{"at the cap", "ascii", 0, 1, func(cap int) string { return strings.Repeat("Z", cap-1) + "\n" }},
		{"a byte past the cap", "ascii", 0, 1, func(cap int) string { return strings.Repeat("Z", cap) + "\n" }},
		{"crlf", "ascii", 0, 1, func(int) string { return strings.Repeat("Z", 1<<18) + "\r\n" }},
		{"utf8", "utf8", 0, 1, func(int) string { return strings.Repeat("É", 1<<17) + "\n" }},
		{"large size", "ascii", 40 << 10, 1, func(cap int) string { return strings.Repeat("Z", 2*cap) + "\n" }},
		{"depth 4", "ascii", 0, 4, func(int) string { return strings.Repeat("Z", 1<<18) + "\n" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := scriptServer(t, func(i int, line string) (string, bool) {
				if i == 3 {
					return tc.long(4*len(upper(line)) + 64), false
				}
				return upper(line), false
			})
			cfg := quick("tcp", addr)
			cfg.Conns, cfg.Depth, cfg.Text, cfg.Size, cfg.Duration = 1, tc.depth, tc.text, tc.size, busyWindow
			rep := runPastLongReply(t, cfg)
			if rep.Mismatches != 1 || rep.MismatchesAfter != 0 || rep.Errors != 0 || rep.Lost != 0 || rep.Messages <= 5 {
				t.Errorf("%d replies, %d wrong (%d after an earlier one; the first %q), %d errors (the first %q), %d lost; want the long one wrong, alone, and the replies after it right",
					rep.Messages, rep.Mismatches, rep.MismatchesAfter, rep.FirstMismatch, rep.Errors, rep.FirstError, rep.Lost)
			}
			// The long line's bytes came back all the same, whole, in
			// MB/s; the right replies' are Size each (ASCII).
			size := cmp.Or(tc.size, 64)
			long := len(tc.long(4*size + 64))
			came := math.Round(rep.MessagesPerSec * rep.MeasuredS)
			if got, want := math.Round(rep.BytesPerSec*rep.MeasuredS), (came-1)*float64(size)+float64(long); tc.text == "ascii" && got != want {
				t.Errorf("%.0f bytes came while measuring in %.0f replies; want %.0f, the long line's %d and the rest %d each", got, came, want, long, size)
			}
		})
	}
}

// The bytes of a reply cut at its check and the rest of its line skipped
// are what came back all the same: MB/s counts the whole line. Skipped,
// they were counted in no throughput: a megabyte's wrong reply was 320
// bytes of it.
func TestCutReplyCountsItsWholeLine(t *testing.T) {
	t.Parallel()
	const long = 1 << 20
	addr := scriptServer(t, func(i int, line string) (string, bool) {
		if i == 3 {
			return strings.Repeat("Z", long) + "\n", false
		}
		return upper(line), false
	})
	cfg := quick("tcp", addr)
	// An open loop of few messages, whose right replies are few bytes
	// beside the long line's.
	cfg.Conns, cfg.Rate, cfg.Text, cfg.Duration = 1, 10, "ascii", busyWindow
	rep := runPastLongReply(t, cfg)
	// Every reply that came while measuring, the right ones 64 bytes
	// (Size), the long one its line's long+1.
	came := math.Round(rep.MessagesPerSec * rep.MeasuredS)
	if got, want := math.Round(rep.BytesPerSec*rep.MeasuredS), (came-1)*64+long+1; rep.Mismatches != 1 || got != want {
		t.Errorf("%.0f bytes came while measuring in %.0f replies, %d wrong; want %.0f, the long line's %d and the rest 64 each, one wrong", got, came, rep.Mismatches, want, long+1)
	}
}

// A reply owed while the line of a wrong one before it, cut at its check,
// goes on without its newline is said to: "no reply within" read as a
// server gone quiet, where 64 KiB of that line had come.
func TestCutLineNotEndedSaysSo(t *testing.T) {
	t.Parallel()
	addr := scriptServer(t, func(i int, line string) (string, bool) {
		switch {
		case i == 3:
			return strings.Repeat("Z", 64<<10), false
		case i > 3:
			return "", false // no more
		}
		return upper(line), false
	})
	cfg := quick("tcp", addr)
	cfg.Conns, cfg.Depth, cfg.Text, cfg.Duration = 1, 1, "ascii", busyWindow
	cfg.Timeout = 300 * time.Millisecond
	rep := run(t, cfg)
	if want := "receive: the line of a wrong reply before it not ended (65536 bytes, no newline yet): no reply within 300ms"; rep.FirstError != want {
		t.Errorf("first error %q, want %q", rep.FirstError, want)
	}
}

// With --reconnect, a connection given up while a cut reply's line went
// on is made again in step: the new connection's first reply is its
// message's, not the end of the old connection's line.
func TestReconnectAfterCutLineStartsInStep(t *testing.T) {
	if goroutineDriver {
		t.Skip("reconnect needs the event-loop driver")
	}
	t.Parallel()
	var conns atomic.Int32
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		first := conns.Add(1) == 1
		r := bufio.NewReader(c)
		for i := 0; ; i++ {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			answer := upper(line)
			switch {
			case first && i == 3:
				answer = strings.Repeat("Z", 64<<10) // and no newline
			case first && i > 3:
				continue // nothing more on the first connection
			}
			if _, err := io.WriteString(c, answer); err != nil {
				return
			}
		}
	})
	cfg := quick("tcp", addr)
	cfg.Conns, cfg.Depth, cfg.Text, cfg.Duration, cfg.Reconnect = 1, 1, "ascii", busyWindow, true
	cfg.Timeout = 300 * time.Millisecond
	rep := run(t, cfg)
	if rep.Mismatches != 1 || rep.Errors != 1 || rep.Messages <= 5 {
		t.Errorf("%d replies, %d wrong (the first %q), %d errors (the first %q); want the long one wrong, one error for its line not ended, and the replies on the new connection right",
			rep.Messages, rep.Mismatches, rep.FirstMismatch, rep.Errors, rep.FirstError)
	}
}

// A reply that comes without its newline is reported as begun and not
// ended, not as no reply at all: 63 bytes had come.
func TestReplyWithoutNewlineSaysSo(t *testing.T) {
	t.Parallel()
	addr := scriptServer(t, func(i int, line string) (string, bool) {
		if i == 5 {
			return strings.TrimSuffix(upper(line), "\n"), false // and nothing more
		}
		return upper(line), false
	})
	cfg := quick("tcp", addr)
	cfg.Conns, cfg.Depth, cfg.Text = 1, 1, "ascii"
	// The time-out must fall while measuring, and after the 63 bytes
	// are read: in a window of 2 s, at 300 ms, a busy machine read them
	// after it ("no reply within 300ms"). The run ends as the one
	// connection fails, the window a safety net; Timeout is as
	// TestSilenceSaysNoReplyWithin's.
	cfg.Timeout, cfg.Duration = time.Second, time.Minute
	// A stall of the process as long as Timeout, between the stand-in's
	// read of message 5 and its write of the 63 bytes, let bench's timer
	// run first as it ended, by the clock rightly: "no reply within 1s"
	// (with either driver, each time the stand-in stopped the process
	// so for 1.5 s). Such a try is run again; one that went wrong
	// without a stall fails.
	for try := 1; ; try++ {
		var rep *bench.Report
		stalled := stalledDuring(cfg.Timeout/2, func() { rep = run(t, cfg) })
		begun := !rep.OK() && strings.Contains(rep.FirstError, "a reply begun but not ended") && strings.Contains(rep.FirstError, "63 bytes, no newline yet")
		if !begun && stalled && try < 5 {
			t.Logf("try %d of at most 5 stalled, first error %q: run again", try, rep.FirstError)
			continue
		}
		if !begun {
			t.Errorf("a reply without its newline: OK %v, first error %q; want it named begun and not ended, 63 bytes", rep.OK(), rep.FirstError)
		}
		return
	}
}

// Connections the server closed before they served a reply are named in
// the last line of a run that is all right: they do not fail it (a
// rolling restart's stop may close one just made), nor go unseen.
func TestUnservedNamedInAllRight(t *testing.T) {
	rep := bench.Report{Settings: bench.Settings{Reconnect: true}, Messages: 10, Reconnects: 3, Unserved: 2}
	if !rep.OK() {
		t.Fatal("not all right: unserved connections fail the run")
	}
	var out strings.Builder
	rep.WriteText(&out)
	if want := "every reply checked: all right, over 3 connections made again, 2 of them after the server closed one before it served a reply"; !strings.Contains(out.String(), want) {
		t.Errorf("report:\n%s\nwant %q", out.String(), want)
	}
}

// runRingOf4 runs one UDP socket at depth against a stand-in that answers
// datagram n with answer(n, b, stop) (see udpServer), with a ring of 4
// that never grows, until the stand-in calls stop.
func runRingOf4(t *testing.T, depth int, timeout time.Duration, answer func(n int, b []byte, stop func()) [][]byte) *bench.Report {
	t.Helper()
	defer bench.SetUDPRing(4)()
	defer bench.SetUDPRingMax(4)()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := udpServer(t, func(n int, b []byte) [][]byte { return answer(n, b, cancel) })
	cfg := quick("udp", addr)
	cfg.Conns, cfg.Depth, cfg.Text = 1, depth, "ascii"
	cfg.Duration, cfg.Timeout = time.Minute, timeout
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// A datagram counted lost because the ring, at its largest, wrapped onto
// it gives its place in the closed loop back, as one counted lost at its
// Timeout does. It kept it: each such loss took one of Depth for good,
// and a socket that met Depth of them sent nothing more. Here, with a
// ring of 4 and Depth 2, datagram 0 is never answered, and datagram 5's
// reply waits for datagram 6, which only a socket with both its places
// sends before 5's Timeout; it sent it after, and counted 5 lost too.
func TestUDPRingAtItsLargestGivesThePlaceBack(t *testing.T) {
	var held []byte
	rep := runRingOf4(t, 2, 5*time.Second, func(n int, b []byte, stop func()) [][]byte {
		switch n {
		case 0: // never answered: 4 takes its place in the ring
			return nil
		case 5:
			held = bytes.Clone(b)
			return nil
		case 6:
			stop() // the run has shown what it must
			return [][]byte{held, b}
		}
		return [][]byte{b}
	})
	if rep.Lost != 1 || rep.Late != 0 || rep.Messages < 5 {
		t.Errorf("%d lost, %d late, %d answered; want datagram 0 lost, and 1 to 6 answered in time", rep.Lost, rep.Late, rep.Messages)
	}
}

// A datagram the ring, at its largest, wrapped onto was counted lost
// within its Timeout; a reply that comes for it in time is not late, and
// it is not lost. It was counted lost and late. Here, with a ring of 4
// and Depth 2, datagram 0's reply is held until datagram 4 has taken its
// place, and comes well within the minute's Timeout.
func TestUDPRingAtItsLargestReplyInTimeIsNotLate(t *testing.T) {
	var held []byte
	rep := runRingOf4(t, 2, time.Minute, func(n int, b []byte, stop func()) [][]byte {
		switch n {
		case 0:
			held = bytes.Clone(b)
			return nil
		case 4: // 4 took 0's place in the ring, and counted it lost
			return [][]byte{held, b}
		case 6:
			stop() // the run has shown what it must
		}
		return [][]byte{b}
	})
	if rep.Lost != 0 || rep.Late != 0 || rep.Messages < 6 || rep.Reordered == 0 {
		t.Errorf("%d lost, %d late, %d answered, %d reordered; want 0 to 6 answered in time, 0 after 1 to 3", rep.Lost, rep.Late, rep.Messages, rep.Reordered)
	}
}

// A second reply to a datagram that has left the ring is checked, as a
// second reply to one still in it is: a wrong one is counted wrong. It
// was passed over.
func TestUDPWrongDuplicateOutOfTheRing(t *testing.T) {
	var first []byte
	rep := runRingOf4(t, 1, time.Minute, func(n int, b []byte, stop func()) [][]byte {
		switch n {
		case 0:
			first = bytes.Clone(b)
			first[len(first)-2] = '!'
		case 6: // 4 took 0's place in the ring
			return [][]byte{b, first}
		case 8: // 7 was sent: the duplicate came before 6's reply
			stop()
		}
		return [][]byte{b}
	})
	if rep.Mismatches != 1 || !strings.Contains(rep.FirstMismatch, "!") {
		t.Errorf("%d wrong (first %q); want the duplicate of 0 wrong", rep.Mismatches, rep.FirstMismatch)
	}
}

// The replies a UDP socket got before the server went away are counted,
// though the kernel tells the refusal (of a datagram sent after) before
// them: the socket ended on the refusal, and the five replies waiting in
// its queue were counted lost. Here the reader starts only once the
// refusal waits, behind the replies.
func TestUDPRepliesQueuedBeforeTheRefusalCount(t *testing.T) {
	if goroutineDriver {
		t.Skip("UDP has one driver")
	}
	addr, gone := goneAfterFive(t)
	defer bench.HoldUDPSocket(gone, 6)()
	cfg := quick("udp", addr)
	cfg.Conns, cfg.Depth, cfg.Text = 1, 8, "ascii"
	cfg.Duration = 10 * time.Second // cut short by the refusal
	rep := run(t, cfg)
	// (Later ones are sent or not: the sender picks between a free place
	// and the refusal; a kernel that tells the refusal after the replies
	// frees more places first.)
	if rep.Messages != 5 || rep.Errors == 0 || rep.Lost < 2 {
		t.Errorf("%d answered, %d errors, %d lost; want five answered, the sixth, seventh (and eighth) lost, and the refusal an error", rep.Messages, rep.Errors, rep.Lost)
	}
}

// goneAfterFive is a UDP server's address that answers five datagrams,
// reads a sixth and goes away (closes its socket, and gone).
func goneAfterFive(t *testing.T) (addr string, gone <-chan struct{}) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		buf := make([]byte, 1<<16)
		for n := 0; ; n++ {
			m, from, err := pc.ReadFrom(buf)
			if err != nil || n == 5 {
				pc.Close()
				return
			}
			pc.WriteTo(bytes.ToUpper(buf[:m]), from)
		}
	}()
	return pc.LocalAddr().String(), closed
}

// A server that falls silent is said to have sent no reply within the
// timeout, whichever driver, and with churn: the goroutine driver and
// churn said "read tcp 127.0.0.1:…->127.0.0.1:…: i/o timeout", which
// names neither the reply nor the timeout, as the event loops do.
func TestSilenceSaysNoReplyWithin(t *testing.T) {
	t.Parallel()
	silent := scriptServer(t, func(i int, line string) (string, bool) {
		if i < 5 {
			return upper(line), false
		}
		return "", false
	})
	begun := scriptServer(t, func(i int, line string) (string, bool) {
		if i < 5 {
			return upper(line), false
		}
		return upper(line)[:10], false
	})
	release := make(chan struct{})
	// never answers nothing and never closes; again closes as the
	// second message comes to it, churn's first exchange having failed
	// (not the second connection: Run's first sends no message).
	var asked atomic.Int64
	again := make(chan struct{})
	never := shouttest.StreamServer(t, func(c net.Conn) {
		if _, err := bufio.NewReader(c).ReadString('\n'); err == nil && asked.Add(1) == 2 {
			close(again)
		}
		<-release
	})
	t.Cleanup(func() { close(release) }) // before the server's own
	for _, tc := range []struct {
		name, addr string
		churn      bool
		want       string
	}{
		{"silent", silent, false, "receive: no reply within 1s"},
		{"begun", begun, false, "receive: a reply begun but not ended (10 bytes, no newline yet): no reply within 1s"},
		{"churn", never, true, "receive: no reply within 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := quick("tcp", tc.addr)
			cfg.Conns, cfg.Depth, cfg.Text, cfg.Churn = 1, 1, "ascii", tc.churn
			// The time-out is long enough that the begun reply's 10 bytes
			// are read before it on a busy machine (at 300 ms they came
			// after it once, and the error said only "no reply within
			// 300ms"). It must fall while measuring, or it is no error:
			// in a window of 2 s, a stall of a second on a busy machine
			// put it after the end (first error ""). So the window is
			// long, a safety net, and the run ends on the failure: the
			// one connection's, which fails for good, or churn's first
			// exchange's, which the second's coming says (its
			// worker counted the failure before it dialled again).
			cfg.Timeout, cfg.Duration = time.Second, time.Minute
			var ready <-chan struct{} // (nil: the end of the one connection ends it)
			if tc.churn {
				ready = again
			}
			rep := runUntil(t, cfg, ready)
			if rep.FirstError != tc.want {
				t.Errorf("first error %q; want %q", rep.FirstError, tc.want)
			}
		})
	}
}

// Bytes that come in the same read as the last reply owed answer no
// message, in a closed loop too: the next message is sent only after
// they came. The event loops sent it first and took them for its
// reply, and the goroutine driver took them for the next message's, so
// one stray line put the connection out of step for the rest of the
// run, every later reply wrong.
func TestStrayBytesAfterTheLastReplyOwed(t *testing.T) {
	t.Parallel()
	straysAfterReplies(t, map[int]string{2: "stray\n"})
}

// A stray line left unended (it answers no message) ends where a reply
// comes: a line that answers no message after that reply is a wrong one
// of its own, with either driver. The goroutine driver's mark of the
// unended line is cleared by the reply (a mutant that kept it counted
// the second stray line as the first one's rest, 1 wrong of 2).
func TestStrayLineAfterAnUnendedOneAndAReply(t *testing.T) {
	t.Parallel()
	straysAfterReplies(t, map[int]string{2: "abc", 3: "stray\n"})
}

// straysAfterReplies runs a closed loop of one connection, Depth 1,
// against a server that answers line i with its uppercase and then
// strays[i], in one write (one read), and wants each stray wrong, the
// first one first, and every reply right, to the reply after the last.
func straysAfterReplies(t *testing.T, strays map[int]string) {
	t.Helper()
	addr := scriptServer(t, func(i int, line string) (string, bool) { return upper(line) + strays[i], false })
	last := int64(slices.Max(slices.Collect(maps.Keys(strays))))
	want := fmt.Sprintf("got %q, which answers no message", strays[slices.Min(slices.Collect(maps.Keys(strays)))])
	cfg := quick("tcp", addr)
	cfg.Conns, cfg.Depth, cfg.Text, cfg.Duration = 1, 1, "ascii", busyWindow
	// A window a stall took but for a reply or none (0 or 1 replies,
	// none wrong: 1 run in 40 under 0.5-2 s stalls) did not reach the
	// reply after the last stray, and is run again; one that reached it,
	// or counted more than the strays wrong, is judged.
	rep := runUntilMeasured(t, cfg, func(rep *bench.Report) bool {
		return rep.Messages >= last+2 || rep.Mismatches > int64(len(strays))
	})
	if rep.Messages < last+2 || rep.Mismatches != int64(len(strays)) || rep.MismatchesAfter != 0 || rep.FirstMismatch != want {
		t.Errorf("%d replies, %d wrong (%d after an earlier one; the first %q); want %d, the strays alone wrong (the first %q), and every reply right",
			rep.Messages, rep.Mismatches, rep.MismatchesAfter, rep.FirstMismatch, len(strays), want)
	}
}

// A run with every reply right still names the replies that came twice
// in its last line, as it names connections made again: a server that
// answers twice, or a network that copies datagrams, is not to be missed.
func TestAllRightNamesDuplicates(t *testing.T) {
	for _, tc := range []struct {
		dups int64
		want string
	}{
		{0, "  every reply checked: all right\n"},
		{1, "  every reply checked: all right, 1 reply duplicated\n"},
		{207, "  every reply checked: all right, 207 replies duplicated\n"},
	} {
		var out strings.Builder
		rep := &bench.Report{Messages: 1000, Duplicates: tc.dups}
		rep.WriteText(&out)
		if !rep.OK() || !strings.HasSuffix(out.String(), tc.want) {
			t.Errorf("%d duplicated: OK() = %v, the report ends\n%s\nwant it to end %q", tc.dups, rep.OK(), out.String(), tc.want)
		}
	}
}

// A UDP server (or a NAT, or a proxy) that answers from another port than
// the one the datagrams went to has every reply dropped by bench's
// connected sockets, unseen: the last line says that only replies from
// there count, where it said just that no reply came back.
func TestUDPRepliesFromAnotherPortSaid(t *testing.T) {
	t.Parallel()
	in, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := in.ReadFrom(buf)
			if err != nil {
				return
			}
			out.WriteTo(bytes.ToUpper(buf[:n]), from)
		}
	}()
	cfg := quick("udp", in.LocalAddr().String())
	cfg.Conns, cfg.Depth, cfg.Duration, cfg.Timeout = 1, 1, busyWindow, 200*time.Millisecond // (100 ms sent nothing on a busy machine)
	rep := run(t, cfg)
	var text strings.Builder
	rep.WriteText(&text)
	want := "not all right: no reply came back (over UDP, a reply counts only from the address and port the datagrams went to)"
	if rep.Messages != 0 || !strings.Contains(text.String(), want) {
		t.Errorf("%d replies; the report:\n%s\nwant %q", rep.Messages, text.String(), want)
	}
}

// A latency line says where each message's time starts, as a user of
// wrk2 or fortio asks first: in an open loop from when it fell due over
// a stream (a stall counts for every message it held up), from its send
// over UDP; in a closed loop from its send, which waited for replies, so
// that a stall counts once a message in flight and the messages it held
// back are in no percentile. A closed loop said nothing: against a
// server that stalled for 1 s of a 3 s window, p99 312µs, max 1.01s,
// "all right", and a reader took the stall for one slow reply.
func TestLatencySaysWhereTimeStarts(t *testing.T) {
	closed := "(each timed from its send, so the messages a stall held back are in no percentile: an open loop counts them)"
	for _, tc := range []struct {
		network string
		rate    float64
		want    string
	}{
		{"tcp", 1000, "(each timed from when it fell due: a stall counts for every message it held up)"},
		{"unix", 1000, "(each timed from when it fell due"},
		{"udp", 1000, "(each timed from its send, which never waits for the server)"},
		{"tcp", 0, closed},
		{"udp", 0, closed},
		{"tcp", 0, ""}, // no reply timed: nothing to say where time starts
		// Churn's latency is of the whole, from the connect (its line says
		// so), and an open loop is no churn's.
		{"churn", 0, "(each timed from its connect, so the connections a stall held back are in no percentile)"},
	} {
		rep := &bench.Report{Settings: bench.Settings{Network: tc.network, Rate: tc.rate}, Messages: 10}
		if tc.network == "churn" {
			rep.Network, rep.Churn = "tcp", true
		}
		if tc.want == "" {
			rep.Messages = 0
		}
		text, page, _ := writeEach(t, rep)
		var line string
		for l := range strings.Lines(text) {
			if strings.HasPrefix(l, "  latency ") {
				line = l
			}
		}
		if !strings.Contains(line, tc.want) || tc.want == "" && strings.Contains(line, "timed from") {
			t.Errorf("%s at %v msg/s, %d replies: latency line %q; want it to say %q", tc.network, tc.rate, rep.Messages, line, tc.want)
		}
		// The page's latency row too: it said nothing of either loop.
		if !strings.Contains(page, tc.want) || tc.want == "" && strings.Contains(page, "timed from") {
			t.Errorf("%s at %v msg/s: the page does not say %q", tc.network, tc.rate, tc.want)
		}
	}
}

// A run's UDP sockets keep their records of datagrams in flight, and of
// those lost out of them, within one budget, however many sockets there
// are: each socket had up to 2,097,152 places, 85 MB (and 16,384 from the
// start, 640 KB, so 10,000 sockets took 6 GB before sending), and
// remembered 1,024 lost.
func TestUDPRingsWithinBudget(t *testing.T) {
	const budget, conns = 4096, 4
	t.Cleanup(bench.SetUDPBudget(budget))
	var places, gone []int
	var mu sync.Mutex
	t.Cleanup(bench.OnUDPRingEnded(func(p, g int) {
		mu.Lock()
		places, gone = append(places, p), append(gone, g)
		mu.Unlock()
	}))
	addr := udpServer(t, func(int, []byte) [][]byte { return nil }) // answers none
	cfg := quick("udp", addr)
	// 3,000 datagrams a socket, all in flight within the timeout: its
	// ring would grow to 4,096 places.
	cfg.Conns, cfg.Text, cfg.Size, cfg.Rate = conns, "ascii", 32, 40000
	rep := run(t, cfg)
	mu.Lock()
	defer mu.Unlock()
	if len(places) != conns {
		t.Fatalf("%d sockets ended, want %d", len(places), conns)
	}
	for k := range places {
		if places[k] > budget/conns || gone[k] > budget/conns/8 {
			t.Errorf("a socket's ring had %d places and it remembered %d lost out of it; want at most %d and %d",
				places[k], gone[k], budget/conns, budget/conns/8)
		}
	}
	if rep.Lost == 0 || rep.OK() {
		t.Errorf("%d lost, OK %v: want the datagrams lost", rep.Lost, rep.OK())
	}
}

// A server that closes a connection with nothing owed on it, between an
// open loop's messages, failed that connection: one error (and, as the
// run's only connection, the run's end). Nothing was wrong or lost: the event
// loops say so, and the goroutine driver, which noticed the close only
// with the next message sent, counted that message wrong ("closed before
// the reply began"), as if the server had closed on it.
func TestOpenLoopIdleCloseIsAnError(t *testing.T) {
	t.Parallel()
	addr := closingServer(t, 2)
	// Patient, and --duration 10 s a bound: the run ends as its one
	// connection fails. (In 1.5 s, a stall past Timeout lost a reply, or
	// put the close after the window's end, in no count.) One in flight:
	// a stall of 500 ms had the third message sent with the second owed,
	// which the close then cut short.
	cfg := bench.OneInFlight(bench.Patient(quick("tcp", addr)))
	// Two replies 500 ms apart, the close with the second: the next is
	// not due for 500 ms.
	cfg.Conns, cfg.Depth, cfg.Rate, cfg.Text = 1, 1, 2, "ascii"
	cfg.Duration, cfg.Timeout = 10*time.Second, time.Second
	rep := run(t, cfg)
	// The error says nothing was owed: through a proxy whose idle
	// timeout (HAProxy's timeout client or server) closed it, "the
	// server closed the connection" read as shout's doing.
	const closed = "receive: the server closed the connection while no reply was owed (as an idle timeout does, the server's or a proxy's)"
	if rep.Messages != 2 || rep.Errors != 1 || rep.Mismatches != 0 || rep.Lost != 0 || rep.CutShort == "" ||
		rep.FirstError != closed {
		t.Errorf("%d messages, %d errors (%q), %d wrong (%q), %d lost, cut short %q; want 2, 1 ("+closed+"), 0, 0, cut short",
			rep.Messages, rep.Errors, rep.FirstError, rep.Mismatches, rep.FirstMismatch, rep.Lost, rep.CutShort)
	}
}

// The same close, with the event loop stalled in its wait from before
// the server's last reply until after the next message fell due: its
// wait returned the reply, the close and the timer at once. The loop took
// the reply, found the connection idle for no time, and sent the message
// due on it without a look at its state: counted wrong ("closed before
// the reply began"), as if the server had closed on it. (The goroutine
// driver's reader, not stalled, meets the close as it comes.)
func TestOpenLoopCloseWithLastReplyDuringStall(t *testing.T) {
	if goroutineDriver || runtime.GOOS != "linux" {
		t.Skip("the stall is of an event loop's wait")
	}
	var got2At time.Time
	got2, stalling, closed := make(chan struct{}), make(chan struct{}), make(chan struct{})
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(bound))
		r := bufio.NewReader(c)
		for i := 0; i < 2; i++ {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if i == 1 {
				got2At = time.Now()
				close(got2)
				select { // the loop waits: the reply and the close come in its wait
				case <-stalling:
				case <-time.After(bound):
				}
			}
			if _, err := io.WriteString(c, upper(line)); err != nil {
				return
			}
		}
		c.(*net.TCPConn).CloseWrite()
		close(closed)
		io.Copy(io.Discard, c)
	})
	var stalled atomic.Bool
	defer bench.OnOpenLoopWait(func() {
		select {
		case <-got2:
		default:
			return
		}
		if !stalled.CompareAndSwap(false, true) {
			return
		}
		close(stalling)
		<-closed
		// The third message falls due 500 ms after the second, which
		// was sent before the server read it.
		time.Sleep(time.Until(got2At.Add(600 * time.Millisecond)))
	})()
	cfg := bench.OneInFlight(bench.Patient(quick("tcp", addr)))
	cfg.Conns, cfg.Depth, cfg.Rate, cfg.Text = 1, 1, 2, "ascii"
	cfg.Duration, cfg.Timeout = 10*time.Second, time.Second
	rep := run(t, cfg)
	if !stalled.Load() {
		t.Fatal("the loop did not wait after the second message")
	}
	if rep.Messages != 2 || rep.Errors != 1 || rep.Mismatches != 0 || rep.Lost != 0 || rep.CutShort == "" ||
		!strings.Contains(rep.FirstError, "the server closed the connection") {
		t.Errorf("%d messages, %d errors (%q), %d wrong (%q), %d lost, cut short %q; want 2, 1 (the server closed the connection), 0, 0, cut short",
			rep.Messages, rep.Errors, rep.FirstError, rep.Mismatches, rep.FirstMismatch, rep.Lost, rep.CutShort)
	}
}

// The same close, with bench's reader stalled between the server's last
// reply and its wait on the connection, and the next message falling due
// meanwhile: the close had come before that message, so it is the
// connection's error, and the message (due before the error, in the
// window) never sent on a failed connection, as the event loops count
// it, which read the close before they send.
// The goroutine driver sent it, and its reader, woken, found it owed and
// counted it wrong ("closed before the reply began"), as if the server
// had closed on it: a verdict that the server was broken, though it had
// merely closed an idle connection.
func TestOpenLoopIdleCloseWhileReaderStalls(t *testing.T) {
	if !goroutineDriver {
		t.Skip("the stall is of the goroutine driver's reader")
	}
	if runtime.GOOS != "linux" {
		t.Skip("only Linux's TCP state shows a close that no read has met")
	}
	// closed: the server has shut its side. Over loopback its close has
	// come to bench's socket as the shutdown returns.
	closed := make(chan struct{})
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		if !answerTwo(c) {
			return
		}
		c.(*net.TCPConn).CloseWrite()
		close(closed) // (one connection: the run has one)
		c.SetReadDeadline(time.Now().Add(bound))
		io.Copy(io.Discard, c)
	})
	// The reader, having taken the second reply (1), waits until the
	// third message's send has ended, and that send begins once the
	// server has closed.
	t.Cleanup(bench.HoldStreamReaderOverSend(1, closed))
	// One in flight: a stall had the second and third sent in one write
	// (the third's send never held), or the third with the second owed.
	cfg := bench.OneInFlight(bench.Patient(quick("tcp", addr)))
	counted := onScheduleCounts(t, addr)
	// --duration 10 s is a bound: the run ends as its one connection
	// fails. (In 1.5 s, a stall put the close after the window's end, in
	// no count: 0 errors.) So each message that fell due from the third
	// on, before the failure (one, or more after a stall), is never sent.
	cfg.Conns, cfg.Depth, cfg.Rate, cfg.Text = 1, 1, 2, "ascii"
	cfg.Duration, cfg.Timeout = 10*time.Second, time.Second
	rep := run(t, cfg)
	if rep.Messages != 2 || rep.Errors != 1 || rep.Mismatches != 0 || rep.Lost != 0 || rep.UnsentFailed == 0 ||
		rep.Unsent != rep.UnsentFailed || counted.due != 2+rep.Unsent ||
		!strings.Contains(rep.FirstError, "the server closed the connection") {
		t.Errorf("%d messages, %d errors (%q), %d wrong (%q), %d lost, %d never sent (%d on failed connections), %d fell due; "+
			"want 2, 1 (the server closed the connection), 0, 0, the rest of those due never sent on failed connections (at least 1)",
			rep.Messages, rep.Errors, rep.FirstError, rep.Mismatches, rep.FirstMismatch, rep.Lost, rep.Unsent, rep.UnsentFailed, counted.due)
	}
}

// The same close, found by bench's reader with nothing owed, and the next
// message, due soon after the last reply (before the writer looks for a
// close), sent before the reader counted the close: the close came first,
// so the message is never sent, as the event loops count it. The
// goroutine driver sent it, and the reader, counting the close, found it
// owed and counted it lost ('lost: 1, want 0', TestStreamThroughAFaultyPath
// under stalls).
func TestOpenLoopIdleCloseFoundBeforeASend(t *testing.T) {
	if !goroutineDriver {
		t.Skip("the stall is of the goroutine driver's reader")
	}
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		if !answerTwo(c) {
			return
		}
		closeGracefully(c) // (reading on: the third's write succeeds)
	})
	// The reader, waiting for the third reply (2), finds the close, and
	// waits until the third message's send has ended, which begins then.
	t.Cleanup(bench.HoldReaderAtIdleCloseOverSend(2))
	cfg := bench.OneInFlight(bench.Patient(quick("tcp", addr)))
	// 50 msg/s: the third falls due 20 ms after the second, sooner than
	// idleLook, so the writer does not look for the close. --duration
	// 10 s is a bound: the run ends as its one connection fails.
	cfg.Conns, cfg.Depth, cfg.Rate, cfg.Text = 1, 1, 50, "ascii"
	cfg.Duration, cfg.Timeout = 10*time.Second, time.Second
	rep := run(t, cfg)
	if rep.Messages != 2 || rep.Errors != 1 || rep.Mismatches != 0 || rep.Lost != 0 || rep.UnsentFailed == 0 ||
		!strings.Contains(rep.FirstError, "the server closed the connection") {
		t.Errorf("%d messages, %d errors (%q), %d wrong (%q), %d lost, %d never sent on failed connections; "+
			"want 2, 1 (the server closed the connection), 0, 0, at least 1",
			rep.Messages, rep.Errors, rep.FirstError, rep.Mismatches, rep.FirstMismatch, rep.Lost, rep.UnsentFailed)
	}
}

// A datagram sent in the warm-up counts for nothing, whatever becomes of
// it: lost (here the first, answered only after Timeout, within the
// warm-up: lost, then late) or answered twice (the second). Only what was
// sent while measuring is lost, late or duplicated.
//
// The run ends, as Ctrl-C ends it, once the late reply went and the
// server has had Depth+1 datagrams since measuring began, the last of
// them measured (no more than Depth of the warm-up's can be on their way
// then): not with a window of its own, which a stall of a second, the
// whole package running under -race, took whole, nothing sent in it ("0
// messages", the warm-up's loss alone counted; SIGSTOP the test from
// 1.8 s to 3.3 s and it is so every time). (Not parallel: the hook is
// the package's.)
func TestUDPWarmupLossAndDuplicatesNotCounted(t *testing.T) {
	var (
		mu    sync.Mutex
		held  []byte // the reply to the first, held past Timeout
		first time.Time
		since int  // datagrams come since measuring began
		ended bool // enough is closed
	)
	measuring, enough := make(chan struct{}), make(chan struct{})
	t.Cleanup(bench.OnMeasuringBegan(func() { close(measuring) }, nil))
	// Timeout is short enough for the first to be given up, and late,
	// within the warm-up; the run is patient, so that no measured
	// datagram is given up for time on a busy machine (a stall past
	// 500 ms lost every one in flight, 1 run in 30 under -race).
	const timeout, depth = 500 * time.Millisecond, 4
	answer := func(n int, b []byte) [][]byte {
		switch {
		case n == 0:
			held, first = b, time.Now()
			return nil
		case n == 1:
			return [][]byte{b, b}
		case held != nil && time.Since(first) > 2*timeout:
			late := held
			held = nil
			return [][]byte{b, late}
		}
		return [][]byte{b}
	}
	addr := udpServer(t, func(n int, b []byte) [][]byte {
		mu.Lock()
		defer mu.Unlock()
		out := answer(n, b)
		select {
		case <-measuring:
			since++
		default:
		}
		if since > depth && held == nil && !ended { // (held set by the first: this is later)
			ended = true
			close(enough) // (out, owed at the cut, is waited for)
		}
		return out
	})
	cfg := bench.Patient(quick("udp", addr))
	cfg.Conns, cfg.Depth = 1, depth
	cfg.Text = "ascii"                                                      // the stand-in's bytes.ToUpper is right on it
	cfg.Warmup, cfg.Timeout, cfg.Duration = 4*timeout, timeout, time.Minute // (a bound: enough ends it)
	rep := runUntil(t, cfg, enough)
	if rep.Messages == 0 || rep.Lost != 0 || rep.Late != 0 || rep.Duplicates != 0 {
		t.Errorf("%d messages, %d lost, %d late, %d duplicated; want some, none lost, late or duplicated: %+v", rep.Messages, rep.Lost, rep.Late, rep.Duplicates, rep)
	}
}

// A patient run (bench.Patient), which tests use where what is counted
// is their point, not timing, gives up no measured message for time: a
// reply the server holds three times Timeout, as a machine that stalls
// bench or the server past Timeout does, is on time, and its connection
// not failed for silence. (Not patient, it is lost, and a stream
// connection fails.)
func TestPatientRunWaitsOutAStall(t *testing.T) {
	t.Parallel()
	const timeout = 100 * time.Millisecond
	stall := func(k int) time.Duration { // the first reply's
		if k == 0 {
			return 3 * timeout
		}
		return 0
	}
	for _, network := range []string{"tcp", "udp"} {
		t.Run(network, func(t *testing.T) {
			t.Parallel()
			var addr string
			var drops *kernelDrops // (nil over TCP, which loses nothing)
			if network == "udp" {
				addr, drops = udpStandIn(t, func(n int, b []byte) [][]byte {
					time.Sleep(stall(n))
					return [][]byte{b}
				})
			} else {
				addr, _ = delayServer(t, stall)
			}
			cfg := bench.Patient(quick(network, addr))
			cfg.Conns, cfg.Depth, cfg.Text, cfg.Timeout = 1, 1, "ascii", timeout
			rep := run(t, cfg)
			longest := time.Duration(rep.LatencyUS.Max) * time.Microsecond
			served := checkLostToKernel(t, rep, drops) // (what the kernel dropped is lost: see kernelDrops)
			if rep.Messages == 0 || served.Lost != 0 || rep.Late != 0 || rep.Errors != 0 || !served.OK() || longest < stall(0) {
				t.Errorf("%d messages, %d lost, %d late, %d errors (%q), OK %v, longest %v; want the held reply on time (%v), all right",
					rep.Messages, rep.Lost, rep.Late, rep.Errors, rep.FirstError, rep.OK(), longest, stall(0))
			}
		})
	}
}

// UDP sockets to a loopback IPv4 server come from several addresses, as
// TCP connections do, against servers that count or limit what one
// address sends (shout serve's budget of replies, --source-rate, is an
// address's, all its ports', off loopback).
//
// A run in which a socket sent nothing (a stall on a busy machine as
// long as the window: "4 sockets came from map[127.0.0.1:true
// 127.0.0.2:true]" of a run all right) shows nothing of where it comes
// from: the server tells the sockets apart by their ports, and such a run
// is made again, at most three times in all.
func TestUDPSocketsSpread(t *testing.T) {
	t.Parallel()
	const tries = 3
	for try := range tries {
		if udpSocketsSpread(t) {
			return
		}
		t.Logf("run %d of at most %d: a socket sent nothing (a stalled machine)", try+1, tries)
	}
	t.Fatalf("%d runs inconclusive: in each, a socket sent nothing; a machine stalled that often, or a bench that leaves sockets idle", tries)
}

// udpSocketsSpread is one run of TestUDPSocketsSpread; it reports false,
// inconclusive, if the server heard from fewer sockets than the run has.
func udpSocketsSpread(t *testing.T) (conclusive bool) {
	var mu sync.Mutex
	from := map[string]bool{}    // IP addresses
	sockets := map[string]bool{} // IP addresses and ports
	pc := shouttest.PacketServerFromConn(t, func(_ int, a net.Addr, b []byte) [][]byte {
		mu.Lock()
		from[a.(*net.UDPAddr).IP.String()] = true
		sockets[a.String()] = true
		mu.Unlock()
		return [][]byte{bytes.ToUpper(b)}
	})
	drops := dropsAt(pc)
	cfg := bench.Patient(quick("udp", pc.LocalAddr().String()))
	cfg.Text, cfg.Duration = "ascii", busyWindow
	rep := run(t, cfg)
	if !checkLostToKernel(t, rep, drops).OK() {
		t.Fatalf("report %+v", rep)
	}
	if rep.UnansweredSources != "" { // every socket answered: no NAT's mark
		t.Errorf("unanswered_sources %q, where every socket got replies", rep.UnansweredSources)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sockets) < cfg.Conns {
		return false
	}
	if len(from) != cfg.Conns || rep.SourceIPs != cfg.Conns {
		t.Errorf("%d sockets came from %v, report says %d addresses; want %d addresses", cfg.Conns, from, rep.SourceIPs, cfg.Conns)
	}
	return true
}

// A message sent to a connection that owed nothing has --timeout for its
// reply from when it was sent, as over a busy one: the goroutine driver,
// its reader waiting on the connection with the deadline it had set as it
// began to wait, read on past that deadline with a new one, so the reply
// had up to twice --timeout, and one that came later than --timeout did
// not fail the connection. Here the second message is sent late in such a
// wait (the reader's deadline, renewed every 8/7 of --timeout while
// nothing is owed, is then about 690 ms away at most), and its reply is
// held back a second (1.7 times --timeout): the connection fails, as the
// event loops fail it (between 600 and 675 ms after the message).
//
// Not parallel: it counts the messages sent (onSent). A stall over the
// second's deadline and the third's due time (3 s) had the third sent
// before the failure was counted, owed, lost ("2 lost", 10 runs of 15
// under stall.sh 100 300 300 1200): every message sent but the first is
// lost, however many.
func TestOpenLoopReplyAfterIdleHasTimeout(t *testing.T) {
	addr := scriptServer(t, func(i int, line string) (string, bool) {
		if i == 1 {
			// Held past stalls: one over both the deadline and the
			// second let the reply be read first, as the defect did
			// (1 message, 0 errors; stalled 20-320 ms at random).
			heldPastStalls(time.Second)
		}
		return upper(line), false
	})
	cfg := quick("tcp", addr)
	// The messages 1.5 s apart: the second is due at 1.5 s, in the
	// reader's third wait (from about 1.37 s). --duration 10 s, a bound:
	// the run ends as its one connection fails; in 2.8 s a stall that
	// sent the second late ended the run before its deadline, the
	// message lost with no error.
	cfg.Conns, cfg.Depth, cfg.Rate, cfg.Text = 1, 1, 1/1.5, "ascii"
	cfg.Duration, cfg.Timeout = bound, 600*time.Millisecond
	// Again, up to five times, while the first reply, which comes at
	// once, did not count: a stall past Timeout lost it, and the run says
	// nothing of the second.
	counted := onSent(t)
	var sent int64 // by the last run
	rep := runUntilMeasured(t, cfg, func(rep *bench.Report) bool {
		sent = counted.Swap(0)
		return rep.Messages > 0
	})
	if rep.Errors != 1 || !strings.Contains(rep.FirstError, "no reply within 600ms") || rep.Messages != 1 || sent < 2 || rep.Lost != sent-1 {
		t.Errorf("%d sent: %d messages, %d errors (%q), %d lost, %d late; want at least 2 sent: 1 message, 1 error (no reply within 600ms), the rest lost",
			sent, rep.Messages, rep.Errors, rep.FirstError, rep.Lost, rep.Late)
	}
}

// With Reconnect, connections that a server at its connection limit
// refuses throughout never serve a reply while measuring: they sit in
// back-off and carry none of the load asked for, and the run is not all
// right, saying how many and why. (3 of 5 refused by a --max-conns 2
// server: "every reply checked: all right".)
func TestReconnectNeverServedNotAllRight(t *testing.T) {
	t.Parallel()
	if goroutineDriver {
		t.Skip("reconnect needs the event-loop driver")
	}
	// The two served first keep their places for the whole run.
	addr := shouttest.Start(t, &server.Server{MaxConns: 2, Logger: slog.New(slog.DiscardHandler)})
	// Patient: a stall past Timeout made a reply of the two served late
	// or lost ("1 lost" besides the 3 not served: 1 run of 2 under -race
	// on a busy machine); busyWindow, so that a stall does not leave no
	// reply in the window.
	cfg := bench.Patient(quick("tcp", addr))
	cfg.Conns, cfg.Depth, cfg.Reconnect, cfg.Duration = 5, 1, true, busyWindow
	rep := run(t, cfg)
	var out strings.Builder
	rep.WriteText(&out)
	if rep.OK() || rep.Messages == 0 {
		t.Errorf("3 of 5 connections refused throughout: OK %v, %d messages; want not all right, with replies:\n%s", rep.OK(), rep.Messages, out.String())
	}
	for _, want := range []string{
		"not all right: 2 of 5 connections served a reply while measuring, 3 did not (the first: the server closed the connection before it served a reply)",
		"  load      2 of 5 connections served a reply while measuring, 3 did not (the first: the server closed the connection before it served a reply): less load than asked for\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
	if rep.NeverServed != 3 {
		t.Errorf("%d never served; want 3", rep.NeverServed)
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"never_served":3,"never_served_why":"the server closed the connection before it served a reply"`; !bytes.Contains(js, []byte(want)) {
		t.Errorf("JSON lacks %s: %s", want, js)
	}
	var page bytes.Buffer
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	if want := "<tr><th>not served while measuring</th><td class=\"n\">3</td>"; !strings.Contains(page.String(), want) {
		t.Errorf("the page lacks %q", want)
	}
}

// The report says of connections (Reconnect) that served no reply while
// measuring that they did not then, not that they never did: a server at
// its connection limit serves the refused ones as the others close, in
// the wait for the replies owed at the end, and it did serve them (the
// text said "3 never did", the page "never served").
func TestNotServedWhileMeasuringNotNever(t *testing.T) {
	rep := &bench.Report{Messages: 100, NeverServed: 3, NeverServedWhy: "the server closed the connection before it served a reply",
		Settings: bench.Settings{Addr: "127.0.0.1:8080", Network: "tcp", Conns: 5, Size: 64, Depth: 1,
			DurationS: 1, TimeoutS: 5, Text: "utf8", Mode: "upper", Reconnect: true},
		MeasuredS: 1}
	var text, page bytes.Buffer
	rep.WriteText(&text)
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{text.String(), page.String()} {
		if strings.Contains(out, "never did") || strings.Contains(out, "never served") {
			t.Errorf("the report says they never served:\n%s", out)
		}
	}
	if want := "2 of 5 connections served a reply while measuring, 3 did not (the first: the server closed the connection before it served a reply)"; !strings.Contains(text.String(), want) {
		t.Errorf("the report lacks %q:\n%s", want, text.String())
	}
	if want := "<tr><th>not served while measuring</th><td class=\"n\">3</td>"; !strings.Contains(page.String(), want) {
		t.Errorf("the page lacks %q", want)
	}
}

// So in an open loop: a connection refused as it is first made has
// nothing owed yet (a refusal of nothing, see
// TestReconnectNothingAskedIsNotNeverServed), but the messages that fall
// due while it is made again are, and refused.
func TestReconnectNeverServedOpenLoop(t *testing.T) {
	t.Parallel()
	if goroutineDriver {
		t.Skip("reconnect needs the event-loop driver")
	}
	addr := shouttest.Start(t, &server.Server{MaxConns: 2, Logger: slog.New(slog.DiscardHandler)})
	cfg := quick("tcp", addr)
	cfg.Conns, cfg.Rate, cfg.Reconnect = 5, 1000, true
	// A refused connection is refused something only once it is made
	// again, after a back-off of 100 ms, with messages due (see
	// TestReconnectNothingAskedIsNotNeverServed): in a window of 300 ms,
	// on a busy machine, 1 of the 3 was counted never served.
	cfg.Duration = busyWindow
	rep := run(t, cfg)
	if rep.OK() || rep.NeverServed != 3 {
		var out strings.Builder
		rep.WriteText(&out)
		t.Errorf("3 of 5 connections refused throughout: OK %v, %d never served; want not all right, 3:\n%s", rep.OK(), rep.NeverServed, out.String())
	}
}

// With Reconnect, a connection that had nothing to send while measuring
// (an open loop at a low rate: its next message falls due after the
// window) served no reply there and was refused nothing, even if the
// server closed it idle (a replica restarting), or refused a message of
// its in the warm-up and then served it. Each run was "1 of 2
// connections served a reply while measuring, 1 never did" (now "did
// not"): not all
// right, exit status 1, for a run that lost nothing.
func TestReconnectNothingAskedIsNotNeverServed(t *testing.T) {
	t.Parallel()
	if goroutineDriver {
		t.Skip("reconnect needs the event-loop driver")
	}
	// Each run ends once the stand-in has seen what its case is about,
	// not on a window a stall may outlast (a window of 500 ms, or of 1 s
	// ending 0.5 s after connection 1's message, left a third of the
	// runs under SIGSTOP stalls of 0.3-2 s without the reply it wanted
	// in it); Duration only bounds a run that never sees it.
	for _, tc := range []struct {
		name string
		// server is the stand-in (restarting as it does) for a try of
		// cfg: ready closes once the run has done what the case is
		// about; asPlanned, once the run has ended, says whether it
		// came in the case's order (see the case).
		server func(t *testing.T) (addr string, ready <-chan struct{}, asPlanned func() bool)
		cfg    func(c *bench.Config)
	}{{
		// Connection 0's message is due at once, connection 1's after
		// 20 s: once it has answered the first, the server closes the
		// other, idle, connection (a restart's close). The run ends as
		// that one is made again.
		name: "closed idle while measuring",
		server: func(t *testing.T) (string, <-chan struct{}, func() bool) {
			var mu sync.Mutex
			var conns []net.Conn
			both := make(chan struct{})   // the run's two connections are here
			remade := make(chan struct{}) // and the one closed idle is made again
			var restart sync.Once
			return shouttest.StreamServer(t, func(c net.Conn) {
				mu.Lock()
				switch conns = append(conns, c); len(conns) {
				case 2:
					close(both)
				case 3:
					close(remade)
				}
				mu.Unlock()
				r := bufio.NewReader(c)
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if _, err := io.WriteString(c, upper(line)); err != nil {
					return
				}
				restart.Do(func() {
					select {
					case <-both:
					case <-time.After(bound):
						t.Error("the run's second connection did not come")
						return
					}
					mu.Lock()
					defer mu.Unlock()
					for _, o := range conns {
						if o != c {
							o.(*net.TCPConn).CloseWrite()
						}
					}
				})
				answerLines(c, r)
			}), remade, func() bool { return true }
		},
		cfg: func(c *bench.Config) { c.Conns, c.Rate, c.Duration = 2, 0.05, 10*time.Second },
	}, {
		// Connection 0's message, due at once in the warm-up, is
		// refused (closed unanswered), then answered on the connection
		// made again, 100 ms on; its next is due after the window, and
		// connection 1's, 2 s on, in it. The run ends as connection 1
		// is answered. A stall from before the message sent again was
		// answered until past connection 1's took that order away (or
		// refused connection 1's): such a try is run again.
		name: "refused in the warm-up, served, then idle",
		server: func(t *testing.T) (string, <-chan struct{}, func() bool) {
			var mu sync.Mutex
			var refused, resentAnswered, outOfOrder bool
			var refusedLine string
			answered := make(chan struct{}) // connection 1's message
			var once sync.Once
			return shouttest.StreamServer(t, func(c net.Conn) {
					r := bufio.NewReader(c)
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					mu.Lock()
					first, resent := !refused, refused && line == refusedLine
					if first { // the run's first message
						refused, refusedLine = true, line
					} else if !resent && !resentAnswered {
						outOfOrder = true
					}
					mu.Unlock()
					if first {
						closeGracefully(c)
						return
					}
					if _, err := io.WriteString(c, upper(line)); err != nil {
						return
					}
					if resent {
						mu.Lock()
						resentAnswered = true
						mu.Unlock()
					} else {
						once.Do(func() { close(answered) })
					}
					answerLines(c, r)
				}), answered, func() bool {
					mu.Lock()
					defer mu.Unlock()
					return !outOfOrder
				}
		},
		cfg: func(c *bench.Config) {
			c.Conns, c.Rate, c.Warmup, c.Duration = 2, 0.5, 500*time.Millisecond, 10*time.Second
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for try := 1; ; try++ {
				addr, ready, asPlanned := tc.server(t) // a server of its own: each refuses, or closes, once
				cfg := bench.Patient(quick("tcp", addr))
				cfg.Reconnect = true
				tc.cfg(&cfg)
				rep := runUntil(t, cfg, ready)
				if !asPlanned() && try < 5 {
					t.Logf("try %d of at most 5 came out of its order (a stall): run again", try)
					continue
				}
				var out strings.Builder
				rep.WriteText(&out)
				if !rep.OK() || rep.NeverServed != 0 {
					t.Errorf("OK %v, %d never served; want all right, 0:\n%s", rep.OK(), rep.NeverServed, out.String())
				}
				return
			}
		})
	}
}

// onSent returns the count of the messages that counted (fell due, or
// were sent, while measuring) that the runs of t handed to their stream
// connections to send.
func onSent(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	t.Cleanup(bench.OnSent(func(measured bool) {
		if measured {
			n.Add(1)
		}
	}))
	return &n
}

// With Reconnect, the connections a server at its connection limit
// closes hold measured messages, sent again and again (or lost, where
// the close came with them unread, a reset): at the stop each is answered
// (the server serves them as the others close), or lost (still being made
// again, or refused, at the end of the wait). Every message sent while
// measuring is in one count, whichever the case: checked with a wait at
// the end shorter than the back-off (unmade, lost) and longer (answered
// in the wait). (A report of "1 lost" with three such connections at the
// stop is two answered in the wait, not two in no count.)
func TestReconnectEveryResentCounted(t *testing.T) {
	if goroutineDriver {
		t.Skip("reconnect needs the event-loop driver")
	}
	addr := shouttest.Start(t, &server.Server{MaxConns: 2, Logger: slog.New(slog.DiscardHandler)})
	for _, timeout := range []time.Duration{50 * time.Millisecond, 2 * time.Second} {
		t.Run(timeout.String(), func(t *testing.T) {
			sent := onSent(t)
			cfg := quick("tcp", addr)
			cfg.Conns, cfg.Depth, cfg.Reconnect = 5, 4, true
			cfg.Duration, cfg.Timeout = busyWindow, timeout
			rep := run(t, cfg)
			if got := rep.Messages + rep.Lost; got != sent.Load() || rep.Mismatches != 0 {
				t.Errorf("%d messages + %d lost = %d, %d wrong; %d sent while measuring", rep.Messages, rep.Lost, got, rep.Mismatches, sent.Load())
			}
		})
	}
}

// A connection the server closes while measuring, cutting short (or never
// beginning) the reply to a message of the warm-up, is gone as any
// closed while measuring is: an error of the measured part, so that the
// run is not all right. The reply counted in no figure, the warm-up's, and
// the connection's end in none either: the run was all right, with one
// connection of two gone.
func TestWarmupReplyCutWhileMeasuring(t *testing.T) {
	for _, tc := range []struct {
		name, sent, first string
	}{
		{"begun", "AB", "receive: the server closed the connection after 2 bytes of a reply"},
		{"not begun", "", "receive: the server closed the connection before the reply began"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			began := make(chan struct{})
			t.Cleanup(bench.OnMeasuringBegan(func() { close(began) }, nil))
			// The run ends once the error is counted: in a window of
			// busyWindow, a stall on a busy machine (-race) put the close
			// after its end, in no count ("0 errors").
			failed := make(chan struct{})
			closeFailed := sync.OnceFunc(func() { close(failed) })
			t.Cleanup(bench.OnFail(func(bool) { closeFailed() }))
			var accepted atomic.Int64
			addr := shouttest.StreamServer(t, func(c net.Conn) {
				r := bufio.NewReader(c)
				if accepted.Add(1) > 1 {
					// The other connection answers once the error is
					// counted, as a stall had it: the server had yet to
					// send a byte at the close, and the error said it
					// may be a TLS server, beside the replies that
					// came after.
					select {
					case <-failed:
					case <-time.After(bound):
					}
					answerLines(c, r)
					return
				}
				if _, err := r.ReadString('\n'); err != nil { // the warm-up's message
					return
				}
				select {
				case <-began:
				case <-time.After(bound):
					return
				}
				io.WriteString(c, tc.sent)
				closeGracefully(c)
			})
			cfg := quick("tcp", addr)
			cfg.Conns, cfg.Depth = 2, 1
			cfg.Timeout = bound // the other's warm-up message, held
			cfg.Warmup, cfg.Duration = 100*time.Millisecond, time.Minute
			rep := runUntil(t, cfg, failed)
			if rep.Errors != 1 || rep.FirstError != tc.first || rep.WarmupErrors != 0 || rep.OK() {
				t.Errorf("%d errors (%q), %d in the warm-up, OK %v; want 1 (%q), 0, not all right",
					rep.Errors, rep.FirstError, rep.WarmupErrors, rep.OK(), tc.first)
			}
		})
	}
}

// An error met once the warm-up's time is up is the measured part's,
// though the clock has yet to count the run as measuring (its goroutine
// woken late on a busy machine): its phase is by the time it came against
// the window's start, fixed before the first message. It was the
// warm-up's, and its connection among those that failed in the warm-up
// ("1 of 2 connections measured, 1 failed in the warm-up"), for a
// connection that failed while measuring.
func TestErrorAtTheWindowsStartMeasured(t *testing.T) {
	reset := make(chan struct{})
	counted := make(chan struct{}, 1)
	done := make(chan struct{}) // the reset counted, or not in time
	t.Cleanup(bench.OnFail(func(bool) {
		select {
		case counted <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(bench.AtWindowBegin(func() {
		defer close(done)
		close(reset)
		select {
		case <-counted:
		case <-time.After(bound):
			t.Error("the reset was not counted")
		}
	}))
	var accepted atomic.Int64
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		if accepted.Add(1) > 1 {
			answerLines(c, r)
			return
		}
		if _, err := r.ReadString('\n'); err != nil { // the warm-up's message, unanswered
			return
		}
		select {
		case <-reset:
		case <-time.After(bound):
			return
		}
		c.(*net.TCPConn).SetLinger(0) // a reset as the handler returns
	})
	cfg := quick("tcp", addr)
	cfg.Conns, cfg.Depth = 2, 1
	// The run ends once the reset is counted, not on a window a stall
	// may outlast: a clock woken past a 1 s window's end let the reset
	// come after it, no error, rightly ("the reset was not counted").
	cfg.Warmup, cfg.Duration = 100*time.Millisecond, time.Minute
	rep := runUntil(t, cfg, done)
	// The message is lost if its sender, late on a busy machine, sent it
	// once the window had begun; not if it went in the warm-up.
	if rep.Errors != 1 || rep.WarmupErrors != 0 || rep.Unmeasured != 0 || rep.Lost > 1 {
		t.Errorf("%d errors (%q), %d in the warm-up (%q), %d unmeasured, %d lost; want 1, 0, 0, 0 or 1",
			rep.Errors, rep.FirstError, rep.WarmupErrors, rep.FirstWarmupError, rep.Unmeasured, rep.Lost)
	}
}

// Throughput is of the replies that came in the window, by the clock, as
// a message's count is: not only those after the clock's goroutine (woken
// late on a busy machine, here held until the server has answered 200
// lines more, or the window has ended) counted the run as measuring. Its
// replies then were not taken for throughput, though their messages
// counted: the rate fell short of what was answered. Of the messages that
// counted, only those in flight at the window's end may be answered
// after it. The hold waited for 200 lines alone, 10 s at most, and failed
// on a loaded machine: nothing is sent once the window has ended by the
// clock (1 s), held or not, and 200 exchanges, two at a time, had not
// come in it. A run in which fewer than 10 came in the hold, too few to
// tell, is run again, five times at most.
func TestThroughputFromTheWindowsStart(t *testing.T) {
	const tries = 5
	for try := range tries {
		var answered, target, held atomic.Int64
		target.Store(math.MaxInt64)
		reached := make(chan struct{})
		var once sync.Once
		addr := shouttest.StreamServer(t, func(c net.Conn) {
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if _, err := io.WriteString(c, upper(line)); err != nil {
					return
				}
				if answered.Add(1) >= target.Load() {
					once.Do(func() { close(reached) })
				}
			}
		})
		restore := bench.AtWindowBeginLeft(func(left time.Duration) {
			from := answered.Load()
			target.Store(from + 200)
			select {
			case <-reached:
			case <-time.After(left): // the window's end: nothing is sent after it
			}
			held.Store(answered.Load() - from)
		})
		cfg := quick("tcp", addr)
		cfg.Conns, cfg.Depth = 2, 1
		cfg.Warmup, cfg.Duration = 10*time.Millisecond, busyWindow
		rep := run(t, cfg)
		restore()
		if held.Load() < 10 {
			t.Logf("run %d of at most %d: %d lines answered as the clock was held (a busy machine)", try+1, tries, held.Load())
			continue
		}
		arrived := math.Round(rep.MessagesPerSec * rep.MeasuredS)
		if least := float64(rep.Messages - int64(cfg.Conns*cfg.Depth)); arrived < least {
			t.Errorf("%.0f replies came while measuring (%.0f msg/s over %.3fs), of %d messages, %d answered as the clock was held: fewer than %.0f",
				arrived, rep.MessagesPerSec, rep.MeasuredS, rep.Messages, held.Load(), least)
		}
		return
	}
	t.Fatalf("%d runs inconclusive: in each, fewer than 10 lines were answered as the clock was held", tries)
}

// A reset with nothing owed (between an open loop's messages) says so
// as shout connect does, whichever driver: the goroutine driver's reader,
// waiting on the connection then, said "receive: read tcp
// 127.0.0.2:55718->127.0.0.1:36737: read: connection reset by peer", or
// the system's "connection reset by peer", where the event loops say
// "receive: connection reset by the server".
func TestIdleResetSaysSo(t *testing.T) {
	addr := afterLine(t, func(c net.Conn, line string) {
		io.WriteString(c, upper(line))
		c.(*net.TCPConn).SetLinger(0) // the close resets
	})
	cfg := quick("tcp", addr)
	cfg.Conns, cfg.Rate, cfg.Text = 1, 0.01, "ascii" // one message, at the start
	cfg.Duration = time.Minute                       // cut short by the reset
	rep := run(t, cfg)
	if !saysReset(rep.FirstError) || rep.Errors != 1 {
		t.Errorf("first error %q, %d errors; want the reset named, one error", rep.FirstError, rep.Errors)
	}
}
