//go:build linux

package bench

import (
	"testing"
	"time"
)

// An event loop's connection held back for want of room, when a reply
// frees room in the round the run stops in (before due could send
// again), counts what it held back never sent, as unanswered: the stop
// saw it short of its most in flight, holding no bytes, and counted none
// of what fell due since it was held (seconds of the rate, at worst).
func TestLoopHeldBackAtTheStopCounted(t *testing.T) {
	const most = 4
	cfg := Config{Conns: 1, Rate: 1000, Size: 16, Warmup: -1}
	r := bareRun(&cfg)
	interval := int64(time.Millisecond)
	l := &loop{r: r, paced: true, most: most, unsent: r.mostUnsent()}
	c := &loopConn{fd: -1, q: ring{limit: most}, cad: cadence{interval: float64(interval)}}
	l.conns = []*loopConn{c}
	for range most {
		c.q.push(sentMsg{})
	}
	now := 100 * interval // a hundred fell due since it was held
	r.windowUntil.Store(now)
	l.due(now)
	c.q.pop() // a reply, in the round the stop came in
	r.halt()
	l.stopped = true
	l.sendRest(c, now)
	r.countUnsent()
	if r.unsent.Load() != 100 || r.unsentUnanswered.Load() != 100 {
		t.Errorf("%d never sent, %d of them held back by the replies owed; want 100 and 100",
			r.unsent.Load(), r.unsentUnanswered.Load())
	}
}
