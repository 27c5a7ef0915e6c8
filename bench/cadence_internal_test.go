package bench

import (
	"math"
	"math/rand/v2"
	"testing"
)

// A cadence's due times never go back, and index finds each: message k
// is the first due at or after due(k), the next after due(k)+1, over
// intervals from a nanosecond to the longest Config allows (30 years),
// and k up to an hour at a message a nanosecond. A due time that went
// back, or an index off by one, counted a message due in the window in
// no count, or in two (dueIn, countUnsent).
func TestCadenceIndexFindsEachDue(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		c := cadence{
			first:    rng.Int64N(int64(3600e9)),
			interval: math.Exp(rng.Float64() * math.Log(1e18)), // 1 ns to 1e18 ns, log-uniform
		}
		k := uint64(rng.Int64N(int64(3600e9/c.interval + 2)))
		switch rng.IntN(8) {
		case 0:
			k = uint64(rng.IntN(4))
		case 1: // an hour at a million a second on a connection
			c.interval, k = 1000, 3_600_000_000-uint64(rng.IntN(4))
		}
		d, next := c.due(k), c.due(k+1)
		if next < d {
			t.Fatalf("%+v: due(%d) = %d after due(%d) = %d", c, k+1, next, k, d)
		}
		if d == math.MaxInt64 {
			continue // (past an int64: due saturates)
		}
		if got := c.index(d); got != k {
			t.Fatalf("%+v: index(due(%d) = %d) = %d", c, k, d, got)
		}
		if got := c.index(d + 1); got != k+1 {
			t.Fatalf("%+v: index(due(%d)+1 = %d) = %d; want %d", c, k, d+1, got, k+1)
		}
	}
}

// index of a time at or before the first message is 0.
func TestCadenceIndexBeforeFirst(t *testing.T) {
	c := cadence{first: 1000, interval: 3600e9}
	for _, at := range []int64{math.MinInt64, 0, 999, 1000} {
		if got := c.index(at); got != 0 {
			t.Errorf("index(%d) = %d; want 0", at, got)
		}
	}
	if got := c.index(1001); got != 1 {
		t.Errorf("index(1001) = %d; want 1", got)
	}
}

// dueIn counts what a brute count over the schedule counts, for windows
// and intervals near a nanosecond, where rounding shows.
func TestScheduleDueInIsABruteCount(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20_000 {
		c := cadence{first: rng.Int64N(100), interval: 0.999999 + rng.Float64()*5}
		next := uint64(rng.IntN(50))
		from := rng.Int64N(300)
		until := from + rng.Int64N(300)
		want := int64(0)
		for k := next; c.due(k) < until; k++ {
			if c.due(k) >= from {
				want++
			}
		}
		if got := (schedule{cad: c, next: next}).dueIn(from, until); got != want {
			t.Fatalf("%+v from %d: dueIn(%d, %d) = %d; want %d", c, next, from, until, got, want)
		}
	}
}
