package bench

import (
	"errors"
	"net"
	"testing"
	"time"
)

// failingConn is a socket whose every write fails.
type failingConn struct{ net.Conn }

func (failingConn) Write([]byte) (int, error) { return 0, errors.New("no route") }

// An open loop's datagrams of a batch whose write failed count each by
// when it fell due, as those written do: the rest took the failed one's,
// so that a batch that straddled the window's start, failing on a
// datagram of the warm-up, sent those due while measuring in no count,
// though they fell due in it (and its schedule, ended after them, did
// not count them never sent either).
func TestUDPFailedBatchCountsEachByItsDue(t *testing.T) {
	r := bareRun(&Config{Rate: 1000, Conns: 1, Size: 64})
	r.epoch = time.Now()
	r.allGone = make(chan struct{})
	r.alive.Store(1)
	const step = time.Millisecond
	from := int64(time.Second)
	r.windowFrom.Store(from)
	r.windowUntil.Store(10 * from)
	r.bodies = make([][]byte, distinct)
	measured := 0
	sentNoted = func(_ *run, _ int64, m bool) {
		if m {
			measured++
		}
	}
	defer func() { sentNoted = nil }()
	u := r.newUDPSocket(0, r.newWorker(), failingConn{})
	// Due 2 ms and 1 ms before the window, at its start, and 1 ms and
	// 2 ms in: the first write fails.
	if u.sendDue(5, cadence{first: from - int64(2*step), interval: float64(step)}, 0, 0) != batchFailed {
		t.Fatal("the send did not fail")
	}
	if measured != 3 {
		t.Errorf("%d of the batch counted; want the 3 due in the window", measured)
	}
}
