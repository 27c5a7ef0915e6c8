package server

import (
	"net"
	"testing"
	"time"
)

// closeSignal tells, through parking, how the loop parks after the
// first connection it closes: whether the poll just before found nothing.
type closeSignal struct {
	closed bool // set in ConnClose, read in parking: both on the loop's goroutine
	parked chan bool
}

func (o *closeSignal) ConnOpen(*ConnInfo)         {}
func (o *closeSignal) ConnRead(*ConnInfo, []byte) {}
func (o *closeSignal) Datagram(*DatagramInfo)     {}
func (o *closeSignal) ConnClose(*ConnInfo)        { o.closed = true }

func (o *closeSignal) parking(emptyPoll bool) {
	if o.closed {
		o.closed = false
		select {
		case o.parked <- emptyPoll:
		default:
		}
	}
}

// A connection the client resets (as the peers' churn does: connect, one
// exchange, a close with SO_LINGER 0) is read to its error and closed in
// the batch that reports the reset; nothing of it is left for a later
// read, so the loop parks at once, without the poll that would find
// nothing (it made one a connection at churn, some 0.5 of about 11
// system calls a connection).
func TestLoopParksAfterResetClose(t *testing.T) {
	o := &closeSignal{parked: make(chan bool, 1)}
	// Set before the loops start and cleared after they end: they read it.
	parking = o.parking
	s := &Server{Observer: o}
	t.Cleanup(func() {
		<-s.Ended()
		parking = nil
	})
	addr := oneLoop(t, s, nil) // answers one connection, closed by the test's cleanup: drained below
	for i := range 3 {
		c := dial(t, addr).(*net.TCPConn)
		answer(t, c, "a")
		if err := c.SetLinger(0); err != nil {
			t.Fatal(err)
		}
		c.Close()
		select {
		case empty := <-o.parked:
			if empty {
				t.Fatalf("connection %d: after closing the reset connection the loop polled once more and found nothing before it parked", i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("connection %d: the loop did not close the reset connection and park within 10 s", i)
		}
	}
}
