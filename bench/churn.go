package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// churners drive a churn run: each of Conns workers connects, sends one
// message, half-closes, reads the reply to the end and closes, again and
// again, so the run measures what a connection costs (accept, a TLS
// handshake, the open and close) as much as the message.
type churners struct {
	r  *run
	wg sync.WaitGroup
	// stopDials ends the connects and handshakes still under way when the
	// wait for the replies owed ends: they owe no reply, and nothing is
	// sent on them.
	stopDials context.CancelFunc

	mu    sync.Mutex
	owing []owing // each worker's exchange whose message is sent
}

// owing is an exchange whose message is sent: its connection (nil if
// none) and the deadline set on it.
type owing struct {
	c  net.Conn
	by time.Time
}

func (r *run) startChurn(ctx context.Context) driver {
	dialCtx, stopDials := context.WithCancel(ctx)
	d := &churners{r: r, stopDials: stopDials, owing: make([]owing, r.cfg.Conns)}
	shards := r.shards(r.cfg.Conns)
	dial := r.dialer()
	for i := range r.cfg.Conns {
		w := shards[i%len(shards)]
		d.wg.Go(func() { r.churnWorker(ctx, dialCtx, d, i, w, dial) })
	}
	return d
}

// drain waits for the replies owed until by, as the other drivers do: an
// exchange whose reply has not come by then fails, its message lost, and
// a connect or handshake still under way then is given up. Not before: a
// handshake cut short is one the server counts failed (shout serve's
// shout_handshake_failures_total), and each run would leave some. A
// signal (cut) ends them, and the exchanges owed, at once.
func (d *churners) drain(by time.Time, cut <-chan struct{}) {
	t := time.AfterFunc(time.Until(by), d.stopDials)
	defer t.Stop()
	defer d.stopDials()
	// An exchange's deadline is its send's time and Timeout, so at most
	// by, Run's stop and Timeout; but Run sets stopping, then takes by:
	// a send in between may be due a little after by. It is held to by.
	d.hold(by)
	select {
	case <-waited(&d.wg):
	case <-cut:
		d.r.cutWait()
		d.stopDials()
		d.hold(time.Now())
		d.wg.Wait()
	}
}

// hold holds every exchange owed to by, if its deadline is later. (No
// exchange is begun once the run is stopping: see send.)
func (d *churners) hold(by time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, o := range d.owing {
		if o.c != nil && by.Before(o.by) {
			o.c.SetDeadline(by)
		}
	}
}

// errStopped: the run stopped as a connection was made, and nothing was
// sent on it.
var errStopped = errors.New("the run stopped before the message was sent")

// send notes that worker i is about to send on c, and sets c's deadline,
// timeout from now, where drain finds it. It returns false, and the
// message is not to be sent, once the run is stopping (Run sets stopping
// before it calls drain).
func (d *churners) send(i int, c net.Conn, timeout time.Duration) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.r.stopping.Load() {
		return false
	}
	d.owing[i] = owing{c, time.Now().Add(timeout)}
	c.SetDeadline(d.owing[i].by)
	return true
}

// done notes that worker i's exchange is over.
func (d *churners) done(i int) {
	d.mu.Lock()
	d.owing[i] = owing{}
	d.mu.Unlock()
}

// nextBackoff is the wait before a connection is made again after one
// that served nothing, or a failed dial: 100 ms, doubled each time, at
// most 5 s, as shout connect --reconnect waits. A churning worker waits
// so after each failed exchange in a row, and a reconnecting one after
// each connection closed before a reply.
func nextBackoff(d time.Duration) time.Duration {
	return min(max(2*d, 100*time.Millisecond), 5*time.Second)
}

// churnWorker is worker i: it dials with dialCtx, which drain cancels, and
// ctx is the run's (Ctrl-C).
func (r *run) churnWorker(ctx, dialCtx context.Context, d *churners, i int, w *worker, dial func(context.Context, int) (net.Conn, error)) {
	got := make([]byte, 0, min(4*r.cfg.Size, 64<<10)) // grows to a large reply
	var backoff time.Duration                         // after failures in a row
	for k := uint64(0); ; k++ {
		start := time.Now() // before stopping is looked at (see haltEarly)
		if sendTimed != nil {
			sendTimed(r)
		}
		if r.stopping.Load() {
			return
		}
		at := int64(start.Sub(r.epoch))
		if at >= r.windowUntil.Load() {
			return // the window is over: the server would serve it, in no count
		}
		measured := r.inWindow(at)
		msg, want := r.msgs[pick(i, k)], r.wants[pick(i, k)]
		var sent bool
		var err error
		got, sent, err = r.exchangeOnce(dialCtx, d, i, dial, msg, got[:0])
		if sent && measured {
			r.sent.Add(1)
		}
		if sent && sentNoted != nil {
			sentNoted(r, at, measured)
		}
		if len(got) > 0 {
			r.hear()
		}
		// The reply is whole once its newline came; without one the
		// server closed before it ended (or began). Bytes after it answer
		// no message: they are wrong, and the reply came all the same.
		reply, rest, whole := got, []byte(nil), false
		if nl := bytes.IndexByte(got, '\n'); nl >= 0 {
			reply, rest, whole = got[:nl+1], got[nl+1:], true
		}
		switch {
		case err != nil && ctx.Err() != nil && !sent:
			// A connect or handshake cut short by Ctrl-C: not the
			// server's fault, and nothing sent. (A message sent is
			// counted as the other drivers count what is owed at the
			// stop: Ctrl-C does not cut its exchange short, and taken
			// for its, a reply not come by the end of the wait for
			// those owed was in no count.)
			return
		case err != nil && whole:
			// The reply came, then the connection failed (a reset, no
			// end of file within Timeout): the reply counts, as on the
			// other drivers, and the failure is an error (none once the
			// run is stopping), not a lost message.
			r.fail(err)
		case err != nil && r.stopping.Load():
			// Owed at the end, and not come by the drain's by: lost, as
			// the other drivers count it (or not waited for: gaveUp). A
			// connect or handshake under way at the end, which drain
			// cancels, sent nothing.
			if measured && sent {
				r.gaveUp(at)
			}
			return
		case err != nil:
			r.fail(err)
			// Lost is of messages sent whose reply never came: a connect
			// or TLS handshake that failed sent none, and is an error only.
			if measured && sent {
				r.lost.Add(1)
			}
		}
		if err == nil || whole {
			r.counted(w, measured, start, reply, want, rest, whole)
		}
		if err == nil {
			backoff = 0
			continue
		}
		// A refused or failed connection comes back at once: a server
		// that is down, or restarting, is not dialled again and again.
		backoff = nextBackoff(backoff)
		select {
		case <-time.After(backoff):
		case <-r.stop:
			return
		}
	}
}

// counted counts a churning exchange's reply: whole (its newline came),
// or cut short by the server's close; rest, bytes after it.
func (r *run) counted(w *worker, measured bool, start time.Time, reply, want, rest []byte, whole bool) {
	if whole {
		// Throughput is of the replies that came, right or wrong, as on
		// the other drivers: none, or one cut short, did not.
		r.arrive(len(reply), r.now())
	}
	wrong := !bytes.Equal(reply, want)
	straying := false
	if !measured {
		// The warm-up's, in WarmupWrong if wrong, as the other drivers
		// count them. (One sent past the window's end, which an early
		// end moved before it, counts in none.)
		if r.beforeWindow(int64(start.Sub(r.epoch))) {
			if wrong {
				r.warmupWrong(reply, want, !whole)
			}
			r.unaskedLines(&wrong, &straying, false, true, rest)
		}
		return
	}
	if wrong {
		r.mismatch(reply, want, !whole)
	}
	r.unaskedLines(&wrong, &straying, true, false, rest) // as the other drivers count them: a wrong reply a line
	if whole {
		// A whole reply, right or wrong, counts as one, as on the other
		// drivers; none, or one cut short, is only wrong. Its latency is
		// of the whole exchange, connect to close (or to the failure
		// after it).
		w.record(r, time.Since(start))
	}
}

// exchangeOnce makes one connection for msg and returns everything the
// server sent on it before closing, up to a few times the reply's length.
// sent says whether msg was sent, or its sending begun: a failed connect
// or handshake sends nothing, and owes no reply; a failed write may have
// sent part, as the other drivers count a failed write's messages.
// Once the run stops, nothing is sent (errStopped).
func (r *run) exchangeOnce(ctx context.Context, d *churners, i int, dial func(context.Context, int) (net.Conn, error), msg, got []byte) (_ []byte, sent bool, _ error) {
	c, err := dial(ctx, i) // within ConnectTimeout
	if err != nil {
		return got, false, err
	}
	defer c.Close()
	if !d.send(i, c, r.cfg.giveUpAfter()) {
		return got, false, errStopped
	}
	defer d.done(i)
	if n, err := c.Write(msg); err != nil {
		return got, true, r.notTaken(n, len(msg), err)
	}
	// Half-close, so the server closes first and the TIME_WAIT is its:
	// this side's ports come free at once, however fast it churns. If
	// that fails (the server has reset the connection), what the server
	// sent before is read all the same: its reply may be there.
	var closeErr error
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil {
			closeErr = failed("send", err)
		}
	}
	buf := bytes.NewBuffer(got)
	_, err = io.Copy(buf, io.LimitReader(c, int64(4*len(msg)+64)))
	whole := bytes.IndexByte(buf.Bytes(), '\n') >= 0 // the reply came, and is counted
	switch {
	case err == nil, errors.Is(err, io.EOF):
	case whole && errors.Is(err, os.ErrDeadlineExceeded):
		return buf.Bytes(), true, fmt.Errorf("receive: the reply came, but the server did not close the connection within %v", r.cfg.Timeout)
	case whole:
		return buf.Bytes(), true, failed("receive", err)
	default:
		return buf.Bytes(), true, replyLate(buf.Len(), r.noReply(err))
	}
	return buf.Bytes(), true, closeErr
}
