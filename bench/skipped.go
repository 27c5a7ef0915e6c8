package bench

import (
	"bytes"
	"errors"
)

// maxSkip is the most messages in a row a stream reply may pass over
// (skippedTo): a connection's messages, from any on, are distinct
// messages for distinct-1 more (pick's stride is odd), so a reply's
// contents name at most one of them. It is less than the 16 messages
// that the first 128 connections with a stride in common are apart
// (pick): their replies crossed are not taken for a skip.
const maxSkip = 15

// uniqueWants says, for each of r.wants, whether no other reply the run
// expects is the same bytes: a reply that is it answers its message and
// no other (a short Size draws some messages twice; past messagesHeld
// the messages repeat).
func uniqueWants(wants [][]byte) []bool {
	unique := make([]bool, len(wants))
	for k, w := range wants {
		unique[k] = true
		for j, o := range wants {
			if j != k && bytes.Equal(w, o) {
				unique[k] = false
				break
			}
		}
	}
	return unique
}

// skippedTo is how many messages a wrong reply got, on connection i,
// whose reply owed is its k-th message's, passed over: j if got is, byte
// for byte, the right reply to its (k+j)-th, one of the written messages
// after the owed one (written of them), and answers no other; else 0.
// The server then answered nothing to the j before it: counted lost, as
// skipped (see skipped), the stream is in step again, where every later
// reply was compared with the message before its own, and counted wrong.
func (r *run) skippedTo(i int, k uint64, written int, got []byte) int {
	for j := 1; j <= min(written, maxSkip); j++ {
		if x := pick(i, k+uint64(j)); r.uniqueWant[x] && bytes.Equal(got, r.wants[x]) {
			return j
		}
	}
	return 0
}

// errWarmSkipped is a warm-up message skipped, as WarmupWrong shows it.
var errWarmSkipped = errors.New("no reply: the server answered nothing to a message, and answered a later message on its connection")

// skipped counts m, a message a stream's server answered with nothing
// while it answered one sent after it (skippedTo): lost, if it counts,
// whether or not a signal ended the wait at the end (its reply will not
// come). One of the warm-up's counts in WarmupWrong, not WarmupLost: a
// server that skips a reply is one that answers wrong, as one whose
// skip put the stream out of step was, its replies after it wrong, and
// the warm-up's lost alone leave a run all right.
func (r *run) skipped(m sentMsg) {
	switch {
	case m.measured:
		r.lost.Add(1)
		r.skips.Add(1)
	case r.beforeWindow(m.at):
		if r.warmWrong.Add(1) == 1 || r.firstWarmWrong.Load() == nil {
			e := errWarmSkipped
			r.firstWarmWrong.CompareAndSwap(nil, &e)
		}
	}
}

// pendingSkip is a stream reply held: the right reply to the j-th
// message after m, connection's k-th, the one owed, that came at (run.now)
// (see skippedTo). The reply after it says what it was: if it answers the
// message after that one, the server skipped m and the j-1 after it; if
// not, got was a wrong reply to m (another connection's, as a server
// that crosses connections' replies sends). j is 0 when none is held.
type pendingSkip struct {
	j   int
	m   sentMsg
	k   uint64
	at  int64
	got []byte
}

// hold holds got, connection i's reply to m, its k-th message, if it is
// the right reply to one of the queued after it (see skippedTo), until
// the reply after it says what it was; at is when it came. It reports
// whether it holds it.
func (p *pendingSkip) hold(r *run, i int, m sentMsg, k uint64, queued int, at int64, got []byte) bool {
	j := r.skippedTo(i, k, queued, got)
	if j > 0 {
		*p = pendingSkip{j: j, m: m, k: k, at: at, got: append(p.got[:0], got...)}
	}
	return j > 0
}

// confirms reports whether got, the reply after the one held, is the
// right reply to the message after the one the held reply named: the
// server skipped the held reply's message and the p.j-1 after it. The
// reply owed now is connection i's k-th message's, with queued after it.
func (p *pendingSkip) confirms(r *run, i int, k uint64, queued int, got []byte) bool {
	return p.j <= queued && bytes.Equal(got, r.wants[pick(i, k+uint64(p.j))])
}

// flush counts the reply held, if any, a wrong reply to its message, on
// connection i (wrong, as streamMismatch takes it): no reply after it
// said the server skipped.
func (p *pendingSkip) flush(r *run, i int, wrong *bool) {
	if p.j > 0 {
		p.j = 0
		r.streamMismatch(wrong, p.m, p.got, r.wants[pick(i, p.k)], false)
	}
}
