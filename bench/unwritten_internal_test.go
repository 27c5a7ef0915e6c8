package bench

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shout/endpoint"
	"shout/internal/shouttest"
)

// Every message the goroutine driver counts was written to the server:
// the server's count of lines it read is the report's messages, lost and
// wrong. The reader, finding the server's close, closed the connection
// under the writer's send just begun, whose write then failed, nothing
// written: its messages were counted wrong ("closed before the reply
// began") or lost, blaming the server for messages it never had, where
// the event loops, which send nothing on a connection they closed, count
// none. (The faulty server of stop 48 closed after 500 replies at
// --depth 4: the report said 3 wrong and 9 lost of 3 connections, the
// server had 6 of them.)
func TestGoroutineDriverCountsOnlyWritten(t *testing.T) {
	was := forceGoroutines
	forceGoroutines = true
	defer func() { forceGoroutines = was }()
	const answered = 5
	for _, depth := range []int{1, 3} {
		t.Run("depth "+strconv.Itoa(depth), func(t *testing.T) {
			addr, got := halfClosingServer(t, answered)
			closed := make(chan struct{})
			readerClosed = func() { close(closed) }
			var taken atomic.Int64 // replies the reader took
			replyTaken = func(uint64) { taken.Add(1) }
			sentNoted = holdSendAfter(&taken, answered, closed)
			defer func() { readerClosed, replyTaken, sentNoted = nil, nil, nil }()
			cfg := Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: addr}, Conns: 1, Depth: depth,
				Text: "ascii", Mode: "ascii", Warmup: -1, Duration: time.Minute, Timeout: 10 * time.Second}
			countsOnlyWritten(t, runWithin(t.Context(), t, cfg), got, answered)
		})
	}
}

// The writer that the reader left the close to (its send under way as
// the reader found the server's close) closes the connection once its
// write has ended, while the run goes on: left open, it held its socket
// (and the server's) until the run's end.
func TestWriterClosesWhatTheReaderLeftIt(t *testing.T) {
	was := forceGoroutines
	forceGoroutines = true
	defer func() { forceGoroutines = was }()
	const answered = 3
	var accepted atomic.Int32
	closedA := make(chan struct{}) // the first connection's server read its end
	release := make(chan struct{}) // the other's server closes it: the run ends
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		if accepted.Add(1) > 1 { // the other: silent, so the run goes on
			<-release
			return
		}
		br := bufio.NewReader(c)
		for range answered {
			line, err := br.ReadBytes('\n')
			if err != nil {
				return
			}
			c.Write(bytes.ToUpper(line))
		}
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, br) // until bench closes
		close(closedA)
	})
	var releasing sync.Once
	defer releasing.Do(func() { close(release) })
	closed := make(chan struct{})
	var once sync.Once
	readerClosed = func() { once.Do(func() { close(closed) }) }
	var taken atomic.Int64 // replies taken (the first connection's: the other has none)
	replyTaken = func(uint64) { taken.Add(1) }
	sentNoted = holdSendAfter(&taken, answered, closed)
	defer func() { readerClosed, replyTaken, sentNoted = nil, nil, nil }()
	cfg := Config{Endpoint: endpoint.Endpoint{Network: "tcp", Address: addr}, Conns: 2, Depth: 1,
		Text: "ascii", Mode: "ascii", Warmup: -1, Duration: time.Hour, Timeout: time.Hour}
	ran := make(chan error, 1)
	go func() {
		_, err := Run(t.Context(), cfg)
		ran <- err
	}()
	select {
	case <-closedA:
	case <-time.After(30 * time.Second):
		t.Error("the connection whose server closed its side is still open 30 s after, the run going on")
	}
	releasing.Do(func() { close(release) })
	select {
	case err := <-ran:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run has not returned a minute after its last connection's server closed it")
	}
}

// countsOnlyWritten checks rep, of a run against a server that answered
// answered messages, then closed and told on got how many it read: those
// answered are messages, the next is wrong (its reply cut short by the
// close), and the rest it read are lost; none it never read is counted.
func countsOnlyWritten(t *testing.T, rep *Report, got <-chan int, answered int64) {
	t.Helper()
	var read int
	select {
	case read = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the server has not counted what it read 10 s after the run")
	}
	if n := rep.Messages + rep.Lost + rep.Mismatches; n != int64(read) || rep.Messages != answered || rep.Mismatches != 1 {
		t.Errorf("%d messages, %d lost, %d wrong (%d in all); the server read %d, answered %d: want %d messages, 1 wrong, and the rest lost, of the %d it read",
			rep.Messages, rep.Lost, rep.Mismatches, n, read, answered, answered, read)
	}
}

// halfClosingServer is a stand-in server that answers the first answered
// lines of its one connection, then shuts its write side and reads until
// bench closes; it tells on got how many lines it read in all.
func halfClosingServer(t *testing.T, answered int) (addr string, got <-chan int) {
	t.Helper()
	released := make(chan struct{})
	close(released)
	addr, got, _ = stuckServer(t, answered, nil, released, nil)
	return addr, got
}

// stuckServer is a stand-in server that answers the first answered lines
// of its one connection, then (once shutAfter closes, if not nil) shuts
// its write side, and reads nothing more until release closes: a write
// that bench has under way then takes no more bytes. Released, it reads
// to the end (bench's close: what bench's socket took comes first) and
// tells on got how many lines it read. Over TLS (a server configuration
// tlsCfg), it shuts its side with a close_notify. shut closes as it has
// shut its side.
func stuckServer(t *testing.T, answered int, shutAfter, release <-chan struct{}, tlsCfg *tls.Config) (addr string, got <-chan int, shut <-chan struct{}) {
	t.Helper()
	read := make(chan int, 1)
	shutting := make(chan struct{})
	addr = shouttest.StreamServer(t, func(c net.Conn) {
		if tlsCfg != nil {
			c = tls.Server(c, tlsCfg)
		}
		br := bufio.NewReader(c)
		n := 0
		for ; n < answered; n++ {
			line, err := br.ReadBytes('\n')
			if err != nil {
				read <- n
				return
			}
			c.Write(bytes.ToUpper(line))
		}
		if shutAfter != nil {
			wait(shutAfter)
		}
		c.(interface{ CloseWrite() error }).CloseWrite()
		close(shutting)
		<-release
		rest, _ := io.ReadAll(br)
		read <- n + bytes.Count(rest, []byte("\n"))
	})
	return addr, read, shutting
}

// holdSendAfter is a sentNoted that holds the first message pushed once
// taken replies reach answered: its write waits until closed (the reader
// has dealt with the server's close), 10 s at most.
func holdSendAfter(taken *atomic.Int64, answered int64, closed <-chan struct{}) func(*run, int64, bool) {
	var held atomic.Bool
	return func(*run, int64, bool) {
		if taken.Load() == answered && held.CompareAndSwap(false, true) {
			wait(closed)
		}
	}
}
