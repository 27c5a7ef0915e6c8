package bench

import (
	"testing"
	"time"

	"shout/endpoint"
)

// Each warm-up datagram given up counts in WarmupLost once, and a
// measured one never: given up at its Timeout (expire), or as the ring,
// at its largest, wraps onto it (put), and not again at the end
// (finish's expire), nor when its reply comes after all (late: it got
// none within Timeout).
func TestUDPWarmupLostCountedOnce(t *testing.T) {
	r, u := udpRingOf4(t)
	counts := func(when string, warm, lost int64) {
		t.Helper()
		if r.warmLost.Load() != warm || r.lost.Load() != lost {
			t.Fatalf("%s: %d of the warm-up's lost, %d measured lost; want %d and %d", when, r.warmLost.Load(), r.lost.Load(), warm, lost)
		}
	}
	// Expired: two of the warm-up's, one measured.
	first := u.put(false)
	u.put(false)
	u.put(true)
	sentAt := u.slot(first).sentAt
	u.expireAt(sentAt.Add(r.cfg.Timeout+time.Millisecond), false)
	counts("expired", 2, 1)
	reply := append(appendSeq(nil, first), r.bodyWants[pick(0, first)]...)
	u.take(reply, sentAt.Add(2*r.cfg.Timeout))
	counts("a late reply to one of the warm-up's", 2, 1)
	// Wrapped onto: four of the warm-up's pending fill the ring, and
	// four measured take their places, then one measured takes the
	// first measured one's.
	for range 4 {
		u.put(false)
	}
	counts("the ring full", 2, 1)
	for range 4 {
		u.put(true)
	}
	counts("the warm-up's wrapped onto", 6, 1)
	u.put(true)
	counts("a measured one wrapped onto", 6, 2)
	u.expireAt(time.Now().Add(r.cfg.Timeout+time.Second), false) // as finish does
	counts("the rest expired", 6, 6)
}

// A warm-up datagram that the ring, at its largest, wrapped onto within
// its Timeout was given up early, as a measured one is (lostGone): its
// reply, come within Timeout all the same, takes it out of WarmupLost,
// which counts those with no reply within Timeout; one that comes later
// leaves it there. Neither counts in any measured figure. The first
// stayed in WarmupLost: a server that answered every datagram in time
// was said to have left some of the warm-up's unanswered.
func TestUDPWarmupWrappedOntoAnsweredInTime(t *testing.T) {
	r, u := udpRingOf4(t)
	inTime, late := u.put(false), u.put(false)
	sentAt := u.slot(inTime).sentAt
	u.put(false)
	u.put(false)
	u.put(true) // wraps onto inTime
	u.put(true) // and late
	if got := r.warmLost.Load(); got != 2 {
		t.Fatalf("%d of the warm-up's lost as the ring wrapped onto two; want 2", got)
	}
	reply := func(seq uint64) []byte { return append(appendSeq(nil, seq), r.bodyWants[pick(0, seq)]...) }
	u.take(reply(inTime), sentAt.Add(r.cfg.Timeout/2))
	u.take(reply(late), sentAt.Add(2*r.cfg.Timeout))
	u.take(reply(inTime), sentAt.Add(r.cfg.Timeout/2)) // a copy: the warm-up's, in no count
	if r.warmLost.Load() != 1 || u.givenUp != 0 || r.lost.Load() != 0 || r.late.Load() != 0 || r.dups.Load() != 0 || r.mismatches.Load() != 0 {
		t.Errorf("%d of the warm-up's lost, %d given up with no reply since; measured: %d lost, %d late, %d duplicated, %d wrong; want 1 (the late one), 0, and none measured",
			r.warmLost.Load(), u.givenUp, r.lost.Load(), r.late.Load(), r.dups.Load(), r.mismatches.Load())
	}
}

// A warm-up datagram still within its Timeout when a signal ended the
// wait at the end (a window shorter than Timeout, Ctrl-C once it was
// measured) got no reply within Timeout no more than it got one: it is
// not in WarmupLost, as a measured one owed then is not lost
// (Unawaited). It was counted lost all the same.
func TestUDPWarmupOwedAtTheCutNotLost(t *testing.T) {
	cfg := Config{Endpoint: endpoint.Endpoint{Network: "udp", Address: "127.0.0.1:9"}, Conns: 1, Rate: 100, Timeout: time.Second}
	r := bareRun(&cfg)
	r.epoch = time.Now()
	u := r.newUDPSocket(0, r.newWorker(), nil)
	old, recent := u.put(false), u.put(false)
	// The cut: the old one's Timeout up by then, the recent one's not.
	u.slot(old).sentAt = r.epoch
	u.slot(recent).sentAt = r.epoch.Add(800 * time.Millisecond)
	cut := r.epoch.Add(1200 * time.Millisecond)
	r.waitCut.Store(int64(cut.Sub(r.epoch)))
	u.expireAt(cut.Add(cfg.Timeout), false) // as finish does
	if got := r.warmLost.Load(); got != 1 {
		t.Errorf("%d of the warm-up's lost; want 1, the one whose Timeout was up at the cut", got)
	}
}

// udpRingOf4 is bareUDPSocket of a run of one socket (Timeout 1 s)
// whose ring has 4 places, at its largest: the fifth datagram sent
// wraps onto the first.
func udpRingOf4(t *testing.T) (*run, *udpSocket) {
	t.Helper()
	cfg := Config{Endpoint: endpoint.Endpoint{Network: "udp", Address: "127.0.0.1:9"}, Conns: 1, Rate: 100, Timeout: time.Second}
	r, u := bareUDPSocket(t, &cfg)
	u.ring, u.most = make([]udpSlot, 4), 4
	return r, u
}

// bareUDPSocket is a run of cfg (bareRun) with its expected replies and
// its clock begun, and one UDP socket of it with no socket under it:
// what its ring and counts do, driven by hand.
func bareUDPSocket(t *testing.T, cfg *Config) (*run, *udpSocket) {
	t.Helper()
	r := bareRun(cfg)
	ref, err := reference(cfg.Mode, cfg.Lang)
	if err != nil {
		t.Fatal(err)
	}
	r.ref = ref
	r.bodies, r.bodyWants = r.expected(2, max(cfg.Size-seqLen, 1))
	r.epoch = time.Now()
	u := r.newUDPSocket(0, r.newWorker(), nil)
	u.dropsBefore = 0 // (no socket to ask)
	return r, u
}

// A reply to a warm-up datagram that the ring has forgotten (given up at
// its Timeout, its place taken since) is the warm-up's, whenever it
// comes: not checked, as one still in the ring is not. Wrong and come
// while measuring, it was counted wrong, one of the run's.
func TestUDPWarmupReplyOutOfTheRingNotChecked(t *testing.T) {
	r, u := udpRingOf4(t)
	warm := u.put(false)
	sentAt := u.slot(warm).sentAt
	u.expireAt(sentAt.Add(2*r.cfg.Timeout), false)
	r.windowFrom.Store(int64(2 * r.cfg.Timeout))
	r.windowUntil.Store(int64(time.Hour))
	for range 4 {
		u.put(true) // one takes its place
	}
	wrong := append(appendSeq(nil, warm), "not the reply"...)
	u.take(wrong, r.epoch.Add(3*r.cfg.Timeout)) // while measuring
	if got := r.mismatches.Load(); got != 0 {
		t.Errorf("%d wrong (the first %v); want none: the reply was a warm-up datagram's", got, *r.firstMismatch.Load())
	}
}

// A warm-up datagram that the ring, at its largest, wrapped onto after a
// signal cut the wait at the end, within its Timeout, is in no count
// (warmGaveUp): nor is its reply, come in time, taken out of one. Taken
// for one counted in WarmupLost, it took WarmupLost below the warm-up's
// datagrams with no reply (here to -1).
func TestUDPWarmupWrappedOntoAfterACutInNoCount(t *testing.T) {
	r, u := udpRingOf4(t)
	warm := u.put(false)
	sentAt := u.slot(warm).sentAt
	for range 3 {
		u.put(false)
	}
	r.waitCut.Store(int64(sentAt.Sub(r.epoch) + r.cfg.Timeout/2)) // within its Timeout
	u.put(true)                                                   // wraps onto it
	u.take(append(appendSeq(nil, warm), r.bodyWants[pick(0, warm)]...), sentAt.Add(r.cfg.Timeout/2))
	if got := r.warmLost.Load(); got != 0 {
		t.Errorf("%d of the warm-up's lost; want 0: the one given up was not counted, nor is its reply", got)
	}
}
