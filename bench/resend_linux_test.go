package bench_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shout/bench"
	"shout/internal/shouttest"
)

// A new connection made for one the server closed gracefully is owed
// every message in flight on the old, and gets them a batch at a time,
// as the server takes them: the loop wrote them all at once, into a
// buffer as large as all of them (here 4 MiB and more; in an open loop
// of large messages at a high rate, gigabytes), kept for the rest of the
// run.
func TestReconnectResendsInBatches(t *testing.T) {
	if goroutineDriver {
		t.Skip("reconnect needs the event loops")
	}
	const closeAfter = 4 << 20 // bytes the server reads of the first connection
	const most = 1 << 20       // bench's most unwritten at once (maxUnsent)
	var mu sync.Mutex
	var wbufMax, outMax int
	t.Cleanup(bench.OnLoopBuffers(func(wbuf, out int) {
		mu.Lock()
		wbufMax, outMax = max(wbufMax, wbuf), max(outMax, out)
		mu.Unlock()
	}))
	var accepted atomic.Int64
	closed := make(chan struct{})
	// The run ends once the connection made again has taken half of what
	// was owed (a busy machine took the whole of a 1.5 s run to the close,
	// and made no connection again within it: 0 resent); 10 s is a bound.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := shouttest.StreamServer(t, func(c net.Conn) {
		if accepted.Add(1) == 1 {
			// Read 4 MiB, answer none, and close gracefully: bench owes
			// the new connection all it sent.
			io.CopyN(io.Discard, c, closeAfter)
			c.(*net.TCPConn).CloseWrite()
			close(closed)
			io.Copy(io.Discard, c)
			return
		}
		// A connection made again answers every message (bytes.ToUpper
		// is right on ascii), so that the run's final wait ends with the
		// last reply: the patient run waited its whole minute
		// (patientWait) for replies this server withheld.
		var read int64
		for buf := make([]byte, 64<<10); ; {
			n, err := c.Read(buf)
			if _, werr := c.Write(bytes.ToUpper(buf[:n])); werr != nil {
				return
			}
			if read += int64(n); read >= closeAfter/2 {
				cancel()
			}
			if err != nil {
				return
			}
		}
	})
	// Patient: the messages owed go unanswered until the close on
	// purpose, and a stall past Timeout had the loop give them up, lost,
	// before it read the close (0 resent, 4 of 4 runs under stall.sh
	// with stops of 1.5-3 s).
	cfg := bench.Patient(quick("tcp", addr))
	// 8 MB/s: the server closes about half a second in.
	cfg.Conns, cfg.Depth, cfg.Text, cfg.Size, cfg.Rate = 1, 1, "ascii", 1024, 8000
	cfg.Duration, cfg.Reconnect = 10*time.Second, true
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	default:
		t.Fatalf("the server read less than %d bytes in the run: %+v", closeAfter, rep)
	}
	if rep.Resent < closeAfter/1024/2 {
		t.Fatalf("%d resent; want the messages owed at the close, about %d", rep.Resent, closeAfter/1024)
	}
	mu.Lock()
	defer mu.Unlock()
	if wbufMax > 2*most || outMax > 3*most {
		t.Errorf("the loop's write buffer grew to %d bytes and a connection's unwritten to %d: want at most %d and %d",
			wbufMax, outMax, 2*most, 3*most)
	}
}
