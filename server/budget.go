package server

import (
	"encoding/binary"
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// The source table remembers each reply sent within loopWindow, to
// which source (address and port) and from which local address (the loop
// guard), and for each source address its reply budget.
//
// Every reply, not just each source's last: a forger who sends several
// datagrams at once from another echo service's address keeps as many
// replies bouncing, and three kept two shouts answering each other for
// good when only the last was known. The replies are a table of one word
// each (a fingerprint of the reply, its source and origin, and when it was
// sent), in buckets of replyWays by a hash of the same: looking a
// datagram up reads one bucket, within one cache line, with no lock.
// (Kept as entries of the budget table, each datagram scanned two sets of
// eight at random places in it: BenchmarkSources a fifth slower at 1,000
// sources; BENCHMARKS.md.) A new reply takes its bucket's oldest word:
// with a word each, two replies that met in one would each take the
// other's place before it came back, and keep bouncing for good off an
// echo service that guards nothing. A reply pushed out before it came
// back is a bounce missed; a datagram is dropped wrongly only if its
// fingerprint and a fresh reply's in its bucket agree (at most 1 in 2^21).
//
// And a budget per address: a forger picks the source port as it likes,
// so a budget per port would give its victim one budget for each. An
// IPv6 address's budget is its /64's, one host's share (as the
// per-address connection limit counts them). The budget table has a fixed
// size, so a flood of sources, forged or not, cannot grow it: addresses
// map by a randomly seeded hash to sets of sourceWays entries, each set
// with its own lock (the workers rarely meet), and a new address takes the
// entry in its set that holds the least.
const (
	sourceWays = 8
	sourceSets = 2048 // a power of two: 16,384 budgets in all

	// replySlots is how many replies the loop guard remembers at most
	// (a power of two; 512 KiB): more than 6 s of replies at 10,000 a
	// second, 260 ms at 250,000, far longer than loopWindow; in buckets of
	// replyWays (32 bytes: the table's start is a page's).
	replySlots = 1 << 16
	replyWays  = 4
	// A remembered reply is one word: a fingerprint in its top
	// replyFPBits, and when it was sent in the rest, in units of
	// 1<<replyTick ns (about a µs; the bits last 13 days, and wrap).
	replyFPBits = 24
	replyTick   = 10
	replyTimes  = 1<<(64-replyFPBits) - 1

	// loopWindow is how soon after a reply the same bytes coming back from
	// where it went, to where it left from, count as the reply bounced
	// back by another echo service, rather than sent again (to the
	// reply table's µs).
	loopWindow = int64(10 * time.Millisecond)

	// burst is how much a budget holds: one second's worth of replies.
	burst = int64(time.Second)
)

// sources is the source table.
type sources struct {
	seed  maphash.Seed
	lseed maphash.Seed // for local addresses (origin)
	epoch time.Time    // what now counts from
	rate  int64        // reply bytes per second per source; 0: no budget
	// stopped makes now always 0 (StopSourceClock, for tests).
	stopped bool
	sets    [sourceSets]sourceSet
	replies []replyBucket // replySlots/replyWays of them; see replyWord
}

type sourceSet struct {
	mu sync.Mutex
	e  [sourceWays]source
}

// source is an address's entry: its budget, a token bucket kept as the
// time it will be full again (the generic cell rate algorithm): a reply of
// n bytes moves that time n/rate seconds later, and is allowed if it stays
// within one second of now. One number, and no refill to compute.
type source struct {
	key  sourceKey
	used bool
	full int64 // when the budget is full again, in ns from epoch
}

// replyBucket is the reply table's bucket: replies (see replyWord), or 0.
type replyBucket [replyWays]atomic.Uint64

// sourceKey is an address, as 16 bytes (IPv4 mapped, without a zone): an
// IPv6 one's /64, and no port; or a loopback source's address and port.
type sourceKey struct {
	hi, lo uint64
	port   uint16
}

// sourceRef is where a source's entries go: its replies', by the hash of
// its address and port, and its address's budget.
type sourceRef struct {
	hash uint64
	addr sourceKey
	aset *sourceSet
}

// newSources returns a source table with a budget of rate reply bytes a
// second per source; 0 or less means no budget.
func newSources(rate int64) *sources {
	return &sources{seed: maphash.MakeSeed(), lseed: maphash.MakeSeed(), epoch: time.Now(), rate: max(rate, 0),
		replies: make([]replyBucket, replySlots/replyWays)}
}

// now is the time in ns since t was made, on the monotonic clock.
func (t *sources) now() int64 {
	if t.stopped {
		return 0
	}
	return int64(time.Since(t.epoch))
}

// lookup returns where ap's entries go.
func (t *sources) lookup(ap netip.AddrPort) sourceRef {
	b := addrBytes(ap)
	r := sourceRef{hash: maphash.Bytes(t.seed, b[:])}
	// The budget's entry: the address's, with no port, and an IPv6
	// address's /64 (not an IPv4-mapped one's, whose last 64 bits are the
	// IPv4 address). A loopback source keeps a budget for each port: a
	// reply to it never leaves this host, so it can have no victim
	// elsewhere, and there the budget only shares the server out among
	// this host's clients; a load tool's sockets each have their own.
	if a := ap.Addr().Unmap(); a.IsLoopback() {
		r.addr.port = ap.Port()
	} else {
		clear(b[16:])
		if !a.Is4() {
			clear(b[8:16])
		}
	}
	b[17] ^= 1 // another hash than the source's
	r.addr.hi, r.addr.lo = binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:16])
	r.aset = &t.sets[maphash.Bytes(t.seed, b[:])&(sourceSets-1)]
	return r
}

// origin returns what a reply that leaves from local address ap is
// remembered with: the same reply coming back is a loop only where it
// left from. A client may send the same text to two of the server's
// addresses (its listeners, or a wildcard listener's addresses) at once;
// a loop through another echo service always comes back to the address
// it left from. Its own seed keeps it apart from the hash of a reply.
func (t *sources) origin(ap netip.AddrPort) uint64 {
	b := addrBytes(ap)
	return maphash.Bytes(t.lseed, b[:])
}

// replyWord returns the bucket of the reply table where a reply whose
// hash, with its origin's, is h, sent to r's source at now, is
// remembered, and the word remembered: a fingerprint (never 0, an empty
// word's) and the time. The bucket and the fingerprint are different bits
// of one hash of source, reply and origin, so the replies to one source
// spread over the whole table, however many there are.
func (t *sources) replyWord(r sourceRef, h uint64, now int64) (*replyBucket, uint64) {
	x := r.hash ^ h
	fp := x>>(64-replyFPBits) | 1
	return &t.replies[x&(replySlots/replyWays-1)], fp<<(64-replyFPBits) | uint64(now>>replyTick)&replyTimes
}

// sentWithin reports whether b holds w's reply, sent at most window ns
// before w's time.
func (b *replyBucket) sentWithin(w uint64, window int64) bool {
	for i := range b {
		if old := b[i].Load(); old>>(64-replyFPBits) == w>>(64-replyFPBits) && (w-old)&replyTimes <= uint64(window>>replyTick) {
			return true
		}
	}
	return false
}

// remember puts w in b, in place of the same reply sent before, or of an
// empty word, or of the oldest. (Two workers that put replies in one
// bucket at once may take one place: one reply is forgotten, and its
// bounce, if it comes, is answered once more.)
func (b *replyBucket) remember(w uint64) {
	at, age := 0, uint64(0)
	for i := range b {
		old := b[i].Load()
		if old == 0 || old>>(64-replyFPBits) == w>>(64-replyFPBits) {
			at = i
			break
		}
		if a := (w - old) & replyTimes; a > age {
			at, age = i, a
		}
	}
	b[at].Store(w)
}

// addrBytes is ap as 16 bytes of address (IPv4 mapped, without a zone)
// and 2 of port.
func addrBytes(ap netip.AddrPort) [18]byte {
	var b [18]byte
	a := ap.Addr().As16()
	copy(b[:], a[:])
	binary.LittleEndian.PutUint16(b[16:], ap.Port())
	return b
}

// admit returns why a datagram p from r's source, arriving at now at the
// local address whose origin is local, must not be answered, from what is
// known before it is transformed: ReasonLoop if it is a reply sent to
// the source from there within loopWindow, ReasonBudget if the source's
// address cannot afford a reply as long as p. It changes nothing.
func (t *sources) admit(r sourceRef, local uint64, now int64, p []byte) Reason {
	if b, w := t.replyWord(r, maphash.Bytes(t.seed, p)^local, now); b.sentWithin(w, loopWindow) {
		return ReasonLoop
	}
	if t.rate <= 0 {
		return ReasonNone
	}
	r.aset.mu.Lock()
	var full int64
	if e := r.aset.find(r.addr); e != nil {
		full = e.full
	}
	r.aset.mu.Unlock()
	if max(full, now)+t.cost(len(p))-now > burst {
		return ReasonBudget
	}
	return ReasonNone
}

// charge takes a reply to r's source, sent at now from the local address
// whose origin is local, from its address's budget, and remembers it,
// making room for either entry if it is new. It reports false, changing
// nothing, if the address cannot afford it. The budget is the address's
// whichever of its ports the reply goes to, and whichever local address
// it leaves from.
func (t *sources) charge(r sourceRef, local uint64, now int64, reply []byte) bool {
	if t.rate > 0 {
		cost := t.cost(len(reply))
		r.aset.mu.Lock()
		e := r.aset.take(r.addr)
		full := max(e.full, now) + cost
		if full-now > burst {
			r.aset.mu.Unlock()
			return false
		}
		e.full = full
		r.aset.mu.Unlock()
	}
	b, w := t.replyWord(r, maphash.Bytes(t.seed, reply)^local, now)
	b.remember(w)
	return true
}

// cost is how long, in ns, a budget takes to earn n bytes, rounded up.
func (t *sources) cost(n int) int64 {
	x := int64(n) * int64(time.Second)
	c := x / t.rate
	if c*t.rate < x {
		c++
	}
	return c
}

// take returns k's entry, making room for it if it is new.
func (s *sourceSet) take(k sourceKey) *source {
	e := s.find(k)
	if e == nil {
		e = s.victim()
		*e = source{key: k, used: true}
	}
	return e
}

func (s *sourceSet) find(k sourceKey) *source {
	for i := range s.e {
		if e := &s.e[i]; e.used && e.key == k {
			return e
		}
	}
	return nil
}

// victim returns the entry to give a new address: an unused one, else the
// one that holds least, the soonest to have a full budget. An address that
// floods keeps its entry, and so its empty budget, while new addresses,
// forged or not, replace each other.
func (s *sourceSet) victim() *source {
	v := &s.e[0]
	for i := range s.e {
		e := &s.e[i]
		if !e.used {
			return e
		}
		if e.full < v.full {
			v = e
		}
	}
	return v
}
