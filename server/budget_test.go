package server

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"net/netip"
	"testing"
	"time"
)

const ms = int64(time.Millisecond)

// The budget, with the clock in the test's hands: a burst of one second's
// worth, then rate bytes a second.
func TestBudgetBucket(t *testing.T) {
	tab := newSources(1000)
	k := tab.lookup(netip.MustParseAddrPort("192.0.2.1:4000"))
	steps := []struct {
		at   int64 // ms
		n    int
		want bool
	}{
		{0, 600, true},
		{0, 400, true}, // the burst: 1000 bytes
		{0, 1, false},
		{10, 10, true}, // 10 ms earns 10 bytes
		{10, 1, false},
		{500, 490, true}, // 490 ms more earns 490
		{500, 1, false},
		{5000, 1001, false}, // more than a second's worth: never
		{5000, 1000, true},  // idle for long: a full burst again, no more
		{5000, 1, false},
	}
	for i, s := range steps {
		now := s.at * ms
		if got := tab.admit(k, 0, now, make([]byte, s.n)) == ReasonNone; got != s.want {
			t.Errorf("step %d: admit %d bytes at %d ms: %v, want %v", i, s.n, s.at, got, s.want)
		}
		if got := tab.charge(k, 0, now, make([]byte, s.n)); got != s.want {
			t.Errorf("step %d: charge %d bytes at %d ms: %v, want %v", i, s.n, s.at, got, s.want)
		}
	}
	// Another port of the same address, or another address of its IPv6
	// /64, shares its budget: a forger picks the port; another address
	// has a budget of its own.
	for _, c := range []struct {
		tab        *sources
		spent, new string
	}{
		{tab, "192.0.2.1:4000", "192.0.2.2:4000"},
		{newSources(1000), "[2001:db8:0:1::1]:4000", "[2001:db8:0:2::1]:4000"},
	} {
		if c.tab != tab && !c.tab.charge(c.tab.lookup(netip.MustParseAddrPort(c.spent)), 0, 5000*ms, make([]byte, 1000)) {
			t.Fatal("charge refused")
		}
		spent := netip.MustParseAddrPort(c.spent)
		same := []netip.AddrPort{netip.AddrPortFrom(spent.Addr(), spent.Port()+1)}
		if a := spent.Addr().As16(); spent.Addr().Is6() {
			a[15]++
			same = append(same, netip.AddrPortFrom(netip.AddrFrom16(a), spent.Port()))
		}
		for _, ap := range same {
			if c.tab.charge(c.tab.lookup(ap), 0, 5000*ms, make([]byte, 1)) {
				t.Errorf("%v after %v spent its budget: charged", ap, c.spent)
			}
		}
		if !c.tab.charge(c.tab.lookup(netip.MustParseAddrPort(c.new)), 0, 5000*ms, make([]byte, 1000)) {
			t.Errorf("%v: no budget of its own", c.new)
		}
	}
	// No budget: anything goes.
	off := newSources(-1)
	k = off.lookup(netip.MustParseAddrPort("192.0.2.1:4000"))
	for range 100 {
		if !off.charge(k, 0, 0, make([]byte, 65535)) {
			t.Fatal("no budget, but a reply was refused")
		}
	}
}

// A datagram that equals a reply just sent to its source, coming back
// to the address the reply left from, is that reply coming back; later,
// or different, or from elsewhere, or to another of the server's
// addresses, it is not.
func TestBudgetLoop(t *testing.T) {
	tab := newSources(DefaultSourceRate)
	here, there := tab.origin(netip.MustParseAddrPort("192.0.2.9:5000")), tab.origin(netip.MustParseAddrPort("192.0.2.9:5001"))
	src := netip.MustParseAddrPort("[2001:db8::1]:4000")
	k := tab.lookup(src)
	// Each reply sent there is known coming back, not only the last.
	for _, reply := range []string{"HELLO", "WORLD", "AGAIN"} {
		if !tab.charge(k, here, 100*ms, []byte(reply)) {
			t.Fatal("charge refused")
		}
	}
	for _, c := range []struct {
		from string
		to   uint64
		at   int64 // ms
		data string
		want Reason
	}{
		{"[2001:db8::1]:4000", here, 100, "HELLO", ReasonLoop},
		{"[2001:db8::1]:4000", here, 110, "HELLO", ReasonLoop},
		{"[2001:db8::1]:4000", here, 105, "WORLD", ReasonLoop},
		{"[2001:db8::1]:4000", here, 105, "AGAIN", ReasonLoop},
		{"[2001:db8::1]:4000", here, 111, "HELLO", ReasonNone},
		{"[2001:db8::1]:4000", here, 105, "HELLO!", ReasonNone},
		{"[2001:db8::1]:4000", here, 105, "HELLo", ReasonNone},
		{"[2001:db8::1]:4001", here, 105, "HELLO", ReasonNone},
		{"[2001:db8::2]:4000", here, 105, "HELLO", ReasonNone},
		{"[2001:db8::1]:4000", there, 105, "HELLO", ReasonNone},
	} {
		k := tab.lookup(netip.MustParseAddrPort(c.from))
		if got := tab.admit(k, c.to, c.at*ms, []byte(c.data)); got != c.want {
			to := "here"
			if c.to == there {
				to = "there"
			}
			t.Errorf("%q from %s to %s at %d ms: %v, want %v", c.data, c.from, to, c.at, got, c.want)
		}
	}
	// The budget is the source's, whichever address its replies leave from.
	cheap := newSources(1000)
	k = cheap.lookup(src)
	if !cheap.charge(k, here, 0, make([]byte, 1000)) {
		t.Fatal("charge refused")
	}
	if cheap.charge(k, there, 0, make([]byte, 1)) {
		t.Error("a source spent its budget, and a reply from another address was charged")
	}
}

// The table stays the same size however many sources there are; a new
// source replaces the entry that holds least, not one whose budget is
// spent, so sending from new addresses does not refill a flooder's budget.
func TestBudgetEviction(t *testing.T) {
	tab := newSources(1000)
	if n := len(tab.sets) * len(tab.sets[0].e); n != 16384 {
		t.Errorf("%d entries, want 16384", n)
	}
	// A flooder, and sourceWays addresses whose budgets share its
	// budget's set.
	big, small := make([]byte, 1000), make([]byte, 10)
	flooder := tab.lookup(netip.MustParseAddrPort("192.0.2.1:4000"))
	set := flooder.aset
	var others []sourceRef
	for i := 0; len(others) < sourceWays && i < 1<<16; i++ {
		r := tab.lookup(netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), 4000))
		if r.aset == set {
			others = append(others, r)
		}
	}
	if len(others) < sourceWays {
		t.Fatalf("found %d budgets in one set", len(others))
	}
	if !tab.charge(flooder, 0, 0, big) {
		t.Fatal("charge refused")
	}
	for i, r := range others {
		if !tab.charge(r, 0, int64(i)*ms, small) {
			t.Fatal("charge refused")
		}
	}
	if set.find(flooder.addr) == nil {
		t.Fatal("the flooder's spent budget was evicted")
	}
	if set.find(others[0].addr) != nil {
		t.Error("the entry that held least was kept")
	}
	if got := tab.admit(flooder, 0, 10*ms, make([]byte, 100)); got != ReasonBudget {
		t.Errorf("flooder after %d new sources: %v, want %v", len(others), got, ReasonBudget)
	}
	// A flood of new sources never grows the table.
	for i := range 100000 {
		r := tab.lookup(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 9999))
		tab.charge(r, 0, 20*ms, []byte("x"))
	}
	if set.find(flooder.addr) == nil {
		t.Error("the flooder's spent budget was evicted by a flood of new sources")
	}
}

// BenchmarkSources measures what the table adds to a datagram that is
// answered: the lookup, the check before the transform and the charge
// after it (with a budget too large to run out).
func BenchmarkSources(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("%dsources", n), func(b *testing.B) {
			tab := newSources(1 << 40)
			here := tab.origin(netip.MustParseAddrPort("192.0.2.9:5000"))
			msg, reply := []byte("hello egon, sixty-four bytes or so: a typical datagram"), []byte("HELLO EGON, SIXTY-FOUR BYTES OR SO: A TYPICAL DATAGRAM")
			srcs := make([]netip.AddrPort, n)
			for i := range srcs {
				srcs[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 40000)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				now := tab.now()
				k := tab.lookup(srcs[i%n])
				if tab.admit(k, here, now, msg) != ReasonNone || !tab.charge(k, here, now, reply) {
					b.Fatal("refused")
				}
				i++
			}
		})
	}
}

// An empty slot of the reply table is no reply: a datagram whose
// fingerprint would be all zeros, at the table's first instant, is
// answered. (Found by search: one in 2^24 hashes.)
func TestBudgetEmptyReplySlotNoLoop(t *testing.T) {
	tab := newSources(DefaultSourceRate)
	r := tab.lookup(netip.MustParseAddrPort("192.0.2.1:4000"))
	p := make([]byte, 8)
	for i := uint64(0); ; i++ {
		if i == 1<<28 {
			t.Fatal("no payload found whose fingerprint is zero")
		}
		binary.LittleEndian.PutUint64(p, i)
		if (r.hash^maphash.Bytes(tab.seed, p))>>(64-replyFPBits) == 0 {
			break
		}
	}
	if got := tab.admit(r, 0, 0, p); got != ReasonNone {
		t.Errorf("a datagram whose fingerprint is zero, on an empty table at 0: %v, want %v", got, ReasonNone)
	}
}

// Replies to one source whose places in the reply table are the same are
// each known coming back, as many as a bucket has ways: direct-mapped, the
// second took the first's place, and two datagrams forged so from an echo
// service that guards nothing kept bouncing for good, each missed after
// the other's reply. One more pushes out the oldest.
func TestBudgetLoopRepliesThatShareAPlace(t *testing.T) {
	tab := newSources(DefaultSourceRate)
	r := tab.lookup(netip.MustParseAddrPort("192.0.2.1:4000"))
	place := func(reply []byte) uint64 {
		return (r.hash ^ maphash.Bytes(tab.seed, reply)) & (replySlots/replyWays - 1)
	}
	replies := [][]byte{[]byte("REPLY 0")}
	for i := 1; len(replies) <= replyWays; i++ {
		if i == 1<<26 {
			t.Fatalf("%d replies found in one place, want %d", len(replies), replyWays+1)
		}
		if p := fmt.Appendf(nil, "REPLY %d", i); place(p) == place(replies[0]) {
			replies = append(replies, p)
		}
	}
	for i, reply := range replies[:replyWays] {
		if !tab.charge(r, 0, int64(100+i)*ms, reply) {
			t.Fatal("charge refused")
		}
	}
	for _, reply := range replies[:replyWays] {
		if got := tab.admit(r, 0, 105*ms, reply); got != ReasonLoop {
			t.Errorf("%q coming back, after %q were sent: %v, want %v", reply, replies[:replyWays], got, ReasonLoop)
		}
	}
	// A reply sent again takes its own place, not another's.
	if !tab.charge(r, 0, 105*ms, replies[1]) {
		t.Fatal("charge refused")
	}
	if got := tab.admit(r, 0, 106*ms, replies[0]); got != ReasonLoop {
		t.Errorf("%q coming back, after %q were sent and %q again: %v, want %v", replies[0], replies[:replyWays], replies[1], got, ReasonLoop)
	}
	if !tab.charge(r, 0, 106*ms, replies[replyWays]) {
		t.Fatal("charge refused")
	}
	for i, reply := range replies {
		want := ReasonLoop
		if i == 0 {
			want = ReasonNone // the oldest, pushed out
		}
		if got := tab.admit(r, 0, 107*ms, reply); got != want {
			t.Errorf("%q coming back, after %q were sent, %q again, and %q: %v, want %v", reply, replies[:replyWays], replies[1], replies[replyWays], got, want)
		}
	}
}

// Hundreds of replies sent to one source at once are each known coming
// back: they spread over the table, not over one bucket. (review56c)
func TestBudgetLoopMany(t *testing.T) {
	tab := newSources(1 << 30)
	k := tab.lookup(netip.MustParseAddrPort("192.0.2.7:40000"))
	const n = 300 // five in one bucket of 16,384: fewer than once in a million runs
	for i := range n {
		if !tab.charge(k, 0, 0, fmt.Appendf(nil, "PING %03d", i)) {
			t.Fatal("charge refused")
		}
	}
	for i := range n {
		if got := tab.admit(k, 0, 0, fmt.Appendf(nil, "PING %03d", i)); got != ReasonLoop {
			t.Fatalf("reply %d of %d bounced back: %v, want %v", i, n, got, ReasonLoop)
		}
	}
}
