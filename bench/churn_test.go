package bench_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shout/bench"
	"shout/endpoint"
	"shout/internal/certs"
	"shout/internal/shouttest"
)

// A churning connect or TLS handshake that fails sends no message: it is
// an error, and nothing is lost, since lost is of messages sent whose
// reply never came. Each server takes the run's first connection (its
// check that the server is there) and then refuses connections, or
// closes them before the handshake; bench counted every such failure
// lost as well. A failure after the message was sent (a reset) still
// loses it.
func TestChurnFailedConnectIsNotLost(t *testing.T) {
	t.Parallel()
	if goroutineDriver {
		t.Skip("once is enough")
	}
	for _, tc := range []struct {
		name   string
		server func(t *testing.T) endpoint.Endpoint
		lost   bool
		err    string // in the first error
	}{
		{"refused", refusingAfterOne, false, "connect 127.0.0.1:"},
		{"handshake", handshakingOnce, false, "tls handshake with 127.0.0.1:"},
		{"reset after the message", resettingAfterMessage, true, "receive: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := quick("tcp", "")
			cfg.Endpoint = tc.server(t)
			cfg.TLS = &tls.Config{InsecureSkipVerify: true}
			cfg.Churn, cfg.Depth, cfg.Conns = true, 1, 2
			cfg.Duration = time.Second // measuring from the start: the first failures count
			rep := run(t, cfg)
			if rep.OK() || rep.Errors == 0 || !strings.HasPrefix(rep.FirstError, tc.err) {
				t.Fatalf("OK %v, %d errors, the first %q; want not all right, some errors, the first beginning %q", rep.OK(), rep.Errors, rep.FirstError, tc.err)
			}
			if tc.lost && !saysReset(rep.FirstError) {
				t.Errorf("the first error %q; want the reset said in words", rep.FirstError)
			}
			if got := rep.Lost > 0; got != tc.lost {
				t.Errorf("%d lost with %d errors (the first %q); want lost %v", rep.Lost, rep.Errors, rep.FirstError, tc.lost)
			}
		})
	}
}

// A churning connection whose handshake the client refuses (the server's
// certificate changed during the run, as shout serve's does on SIGHUP) is
// the report's error, with the hint naming the options as NameSettings
// does: shout bench said "pass the one that did with TLSOptions.CA FILE,
// or TLSOptions.Insecure", flags it does not have.
func TestChurnErrorNamedByNameSettings(t *testing.T) {
	if goroutineDriver {
		t.Skip("once is enough")
	}
	serverConfig := func() (*tls.Config, *x509.Certificate) {
		store, err := certs.SelfSigned([]string{"127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := certs.ServerConfig(store, "")
		leaf, _ := store.GetCertificate(nil)
		cert, err := x509.ParseCertificate(leaf.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return cfg, cert
	}
	trusted, cert := serverConfig()
	other, _ := serverConfig()
	var n atomic.Int64
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(bound))
		cfg := trusted // the run's check that the server is there
		if n.Add(1) > 1 {
			cfg = other
		}
		if tc := tls.Server(c, cfg); tc.Handshake() == nil {
			io.Copy(io.Discard, tc) // until the client closes
		}
	})
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	// The run ends once the error is counted: in quick's 300 ms window,
	// a stall (the test process stopped, a handshake slow under -race)
	// put the refused handshake past its end, in no count ("0 errors").
	failed := make(chan struct{})
	closeFailed := sync.OnceFunc(func() { close(failed) })
	t.Cleanup(bench.OnFail(func(bool) { closeFailed() }))
	cfg := quick("tcp", "")
	cfg.Endpoint = endpoint.Endpoint{Network: "tcp", Address: addr, TLS: true}
	cfg.TLS = &tls.Config{RootCAs: pool}
	cfg.Churn, cfg.Depth, cfg.Conns, cfg.Duration = true, 1, 1, time.Minute
	rep := runUntil(t, cfg, failed)
	if want := "pass the one that did with TLSOptions.CA FILE, or TLSOptions.Insecure to try things out)"; rep.Errors == 0 || !strings.HasSuffix(rep.FirstError, want) {
		t.Errorf("%d errors, the first %q; want it to end %q", rep.Errors, rep.FirstError, want)
	}
	rep.NameSettings(func(f string) string {
		if flag, ok := map[string]string{"TLSOptions.CA": "--ca", "TLSOptions.Insecure": "--insecure"}[f]; ok {
			return flag
		}
		return f
	})
	if want := "pass the one that did with --ca FILE, or --insecure to try things out)"; rep.Errors == 0 || !strings.HasSuffix(rep.FirstError, want) {
		t.Errorf("%d errors, the first %q; want it to end %q", rep.Errors, rep.FirstError, want)
	}
}

// refusingAfterOne is a TLS server that takes one connection, stops
// listening, and only then completes its handshake: every connection
// made after that one (the run's check that the server is there) is
// refused.
func refusingAfterOne(t *testing.T) endpoint.Endpoint { return tlsOnce(t, true) }

// handshakingOnce is a TLS server that completes the handshake of its
// first connection only, and closes every later one before it.
func handshakingOnce(t *testing.T) endpoint.Endpoint { return tlsOnce(t, false) }

func tlsOnce(t *testing.T, refuse bool) endpoint.Endpoint {
	store, err := certs.SelfSigned([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := certs.ServerConfig(store, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if n > 0 {
				c.Close() // before the handshake
				continue
			}
			if refuse {
				ln.Close()
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(bound))
				tc := tls.Server(c, cfg)
				if tc.Handshake() == nil {
					io.Copy(io.Discard, tc) // until the client closes
				}
			})
		}
	})
	return endpoint.Endpoint{Network: "tcp", Address: ln.Addr().String(), TLS: true}
}

// resettingAfterMessage reads each connection's message to its end and
// resets the connection instead of answering.
func resettingAfterMessage(t *testing.T) endpoint.Endpoint {
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(bound))
		io.Copy(io.Discard, c)
		c.(*net.TCPConn).SetLinger(0)
	})
	return endpoint.Endpoint{Network: "tcp", Address: addr}
}

// Throughput is of the replies that came: a churning connection the
// server closes without a reply, or with one cut short, is wrong and adds
// nothing to msg/s or MB/s. It added one message, and its bytes, to
// both: a server that closed every connection without a byte showed 1867
// msg/s.
func TestChurnThroughputIsOfRepliesThatCame(t *testing.T) {
	t.Parallel()
	if goroutineDriver {
		t.Skip("once is enough")
	}
	for _, tc := range []struct {
		name  string
		reply func(line string) string // what the server sends before it closes
	}{
		{"none", func(string) string { return "" }},
		{"cut short", func(line string) string { return upper(line)[:10] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := afterLine(t, func(c net.Conn, line string) { io.WriteString(c, tc.reply(line)) })
			cfg := quick("tcp", addr)
			cfg.Churn, cfg.Depth, cfg.Conns, cfg.Text = true, 1, 2, "ascii"
			// (A stall that took quick's 300 ms window whole counted
			// nothing: "0 wrong, 0 messages".)
			rep := runMeasuring(t, cfg)
			if rep.Mismatches == 0 || rep.Messages != 0 {
				t.Fatalf("%d wrong, %d messages; want some wrong, no messages", rep.Mismatches, rep.Messages)
			}
			if rep.MessagesPerSec != 0 || rep.BytesPerSec != 0 {
				t.Errorf("%.0f msg/s, %.0f bytes/s from replies that never came whole; want none", rep.MessagesPerSec, rep.BytesPerSec)
			}
			for _, s := range rep.Timeline {
				if s.MessagesPerSec != 0 {
					t.Errorf("the timeline's second at %.1fs: %.0f msg/s; want none", s.T, s.MessagesPerSec)
				}
			}
		})
	}
}

// A churning reply is whole once its newline came: bytes after it, before
// the server closes, answer no message and are wrong, but the reply came,
// and counts in messages, throughput and latency, as on the other
// drivers. A right reply followed by "zz" was never counted: the run said
// no reply came back.
func TestChurnReplyThenStrayBytes(t *testing.T) {
	t.Parallel()
	if goroutineDriver {
		t.Skip("once is enough")
	}
	addr := afterLine(t, func(c net.Conn, line string) { io.WriteString(c, upper(line)+"zz") })
	cfg := quick("tcp", addr)
	cfg.Churn, cfg.Depth, cfg.Conns, cfg.Duration = true, 1, 2, busyWindow
	rep := run(t, cfg)
	if rep.Messages == 0 || rep.MessagesPerSec == 0 || rep.LatencyUS.Max == 0 {
		t.Fatalf("%d messages, %.0f msg/s, latency max %.0fµs; want the right replies counted", rep.Messages, rep.MessagesPerSec, rep.LatencyUS.Max)
	}
	// Each right reply is followed by stray bytes: one wrong for each.
	if rep.Mismatches != rep.Messages || rep.OK() {
		t.Errorf("%d wrong of %d messages, OK %v; want as many wrong as messages, and not all right", rep.Mismatches, rep.Messages, rep.OK())
	}
	if want := `got "zz", which answers no message`; rep.FirstMismatch != want {
		t.Errorf("first wrong reply %q, want %q", rep.FirstMismatch, want)
	}
}

// Bytes after a churning reply are one wrong reply a line, as on the
// other drivers (TestStrayBytesAreOneWrongReplyALine): two lines after
// each reply were counted one.
func TestChurnStrayBytesAreOneWrongReplyALine(t *testing.T) {
	t.Parallel()
	if goroutineDriver {
		t.Skip("once is enough")
	}
	addr := afterLine(t, func(c net.Conn, line string) { io.WriteString(c, upper(line)+"stray one\nstray two\n") })
	cfg := quick("tcp", addr)
	cfg.Churn, cfg.Depth, cfg.Conns, cfg.Duration = true, 1, 2, busyWindow
	rep := runMeasuring(t, cfg)
	if rep.Messages == 0 || rep.Mismatches != 2*rep.Messages {
		t.Errorf("%d wrong of %d messages; want two for each, a line each", rep.Mismatches, rep.Messages)
	}
}

// At the end of a churning run a connect or handshake still under way
// owes no reply: it is given up, counted neither lost nor an error, and
// the wait for what is owed is not the connect's. Here every handshake
// after the run's first (its check that the server is there) hangs, and
// would until ConnectTimeout, far past the run: bench waited for each,
// past --timeout, then counted it lost, with no error to say why. (A
// message sent and not answered by the end of that wait is still lost:
// see TestOwedRepliesAreLost.)
func TestChurnEndGivesUpConnects(t *testing.T) {
	t.Parallel()
	if goroutineDriver {
		t.Skip("once is enough")
	}
	store, err := certs.SelfSigned([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := certs.ServerConfig(store, "")
	hold := make(chan struct{})
	var n atomic.Int64
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		if n.Add(1) > 1 {
			<-hold // the handshake never comes
			return
		}
		c.SetDeadline(time.Now().Add(bound))
		tc := tls.Server(c, srv)
		if tc.Handshake() == nil {
			io.Copy(io.Discard, tc)
		}
	})
	t.Cleanup(func() { close(hold) }) // before the server's own
	cfg := quick("tcp", "")
	cfg.Endpoint = endpoint.Endpoint{Network: "tcp", Address: addr, TLS: true}
	cfg.TLS = &tls.Config{InsecureSkipVerify: true}
	cfg.Churn, cfg.Depth, cfg.Conns = true, 1, 4
	cfg.ConnectTimeout = bound
	rep := run(t, cfg)
	if rep.Lost != 0 || rep.Errors != 0 || rep.Messages != 0 {
		t.Errorf("%d lost, %d errors (the first %q), %d messages; want none of each: no message was sent", rep.Lost, rep.Errors, rep.FirstError, rep.Messages)
	}
	t.Logf("the wait at the end took %.3fs", rep.DrainS)
}

// A churning reply that came whole before its connection failed (a
// reset, no end of file within Timeout) counts as a reply, and the
// failure as an error: the reply was counted lost, and the run said no
// reply came back. The other drivers count the reply and the error.
func TestChurnReplyThenResetCounts(t *testing.T) {
	t.Parallel()
	if goroutineDriver {
		t.Skip("once is enough")
	}
	addr := afterLine(t, func(c net.Conn, line string) {
		io.WriteString(c, upper(line))
		c.(*net.TCPConn).SetLinger(0) // the close resets, after the whole reply
	})
	cfg := quick("tcp", addr)
	cfg.Churn, cfg.Depth, cfg.Conns, cfg.Text = true, 1, 2, "ascii"
	cfg.Duration = busyWindow // (back-off 100 ms doubling: about 5 errors a worker)
	rep := run(t, cfg)
	if rep.Messages == 0 || rep.Errors == 0 || rep.Lost != 0 || rep.Mismatches != 0 {
		t.Errorf("%d replies, %d errors (the first %q), %d lost, %d wrong; want replies, errors, none lost or wrong",
			rep.Messages, rep.Errors, rep.FirstError, rep.Lost, rep.Mismatches)
	}
	// Each exchange failed, so each worker backs off as from a server
	// that is down: 100, 200, 400 ms apart, a few tries in the 300 ms
	// run (fewer on a slow machine). Without, about a thousand a worker.
	if rep.Errors > 20 {
		t.Errorf("%d errors in a run of a second of 2 workers; want a few: each failed exchange backs off", rep.Errors)
	}
}

// A churning exchange whose message was sent when the run was
// interrupted (Ctrl-C) is counted as the other drivers count what is
// owed at the stop: answered in the wait for the replies owed, or lost.
// Any failure after Ctrl-C was taken for the interruption's: a reply
// not come by the end of the wait was in no count, nor one that came
// before a failure. Only a connect or handshake that Ctrl-C cut short
// sent nothing, and is nothing.
func TestChurnInterruptedOwedIsLost(t *testing.T) {
	if goroutineDriver {
		t.Skip("once is enough")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := make(chan struct{})
	var got atomic.Int64
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			return // (the run's check that the server is there)
		}
		if got.Add(1) == 2 {
			cancel() // Ctrl-C, each worker's message sent and unanswered
		}
		<-release
	})
	t.Cleanup(func() { close(release) })
	cfg := quick("tcp", addr)
	cfg.Churn, cfg.Depth, cfg.Conns = true, 1, 2
	cfg.Duration, cfg.Timeout = time.Minute, 300*time.Millisecond
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Lost != 2 || rep.Messages != 0 || rep.Errors != 0 || !rep.Interrupted {
		t.Errorf("%d lost, %d messages, %d errors (%q), interrupted %v; want the 2 sent lost, no error, interrupted",
			rep.Lost, rep.Messages, rep.Errors, rep.FirstError, rep.Interrupted)
	}
}

// Every churning message sent while measuring is in exactly one of
// messages and lost, as the other drivers' are (onSent), whatever the
// server does after reading it: answers and closes, resets, answers and
// holds the connection open past --timeout (a reply, and an error), or
// holds it open unanswered (lost).
func TestChurnEverySentCounted(t *testing.T) {
	if goroutineDriver {
		t.Skip("once is enough")
	}
	release := make(chan struct{})
	var n atomic.Int64
	addr := afterLine(t, func(c net.Conn, line string) {
		switch n.Add(1) % 4 {
		case 0:
			io.WriteString(c, upper(line))
		case 1:
			c.(*net.TCPConn).SetLinger(0) // the close resets
		case 2:
			io.WriteString(c, upper(line))
			<-release
		case 3:
			<-release
		}
	})
	t.Cleanup(func() { close(release) }) // before the server's own
	sent := onSent(t)
	cfg := quick("tcp", addr)
	cfg.Churn, cfg.Depth, cfg.Conns, cfg.Text = true, 1, 2, "ascii"
	cfg.Duration, cfg.Timeout = busyWindow, 100*time.Millisecond
	rep := run(t, cfg)
	if got := rep.Messages + rep.Lost; got != sent.Load() || rep.Lost == 0 || rep.Mismatches != 0 {
		t.Errorf("%d messages + %d lost = %d, %d wrong; %d sent while measuring, some lost, none wrong", rep.Messages, rep.Lost, got, rep.Mismatches, sent.Load())
	}
}
