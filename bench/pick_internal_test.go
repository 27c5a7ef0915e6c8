package bench

import (
	"math"
	"testing"
)

// Connection i's k-th message is pick(i, k): for every k a connection can
// reach, pick is an index of the run's messages and walks them by the
// connection's stride. Where int is 32 bits (GOARCH=386, arm), k times
// the stride passed it after 2^31/63 messages on a connection (2^31 on
// the first 64), pick turned negative, and bench panicked, index out of
// range, in a long run: connection 1984 at its 34,087,041st message.
// Where int is 64 bits, pick failed the same way past 2^57 messages.
func TestPickPastIntRange(t *testing.T) {
	for _, i := range []int{0, 1, 63, 64, 1000, 1984, 2047} {
		step := (pick(i, 1) - pick(i, 0) + distinct) % distinct
		for _, from := range []uint64{
			math.MaxInt32/uint64(step) - 3, math.MaxInt32 - 3, math.MaxUint32 - 3,
			math.MaxInt64/uint64(step) - 3, math.MaxInt64 - 3, math.MaxUint64 - 8,
		} {
			prev := pick(i, from)
			for k := from + 1; k <= from+6; k++ {
				got := pick(i, k)
				if got < 0 || got >= distinct || got != (prev+step)%distinct {
					t.Fatalf("connection %d: message %d is pick %d after %d, want %d", i, k, got, prev, (prev+step)%distinct)
				}
				prev = got
			}
		}
	}
}

// Two connections' messages are told apart as pick says: of two of the
// first 64, the one's k-th is never the other's; the replies of one
// crossed onto another of a different stride (i%32) are never, two in a
// row, replies to its messages 1 to maxSkip later (taken for a skip: see
// skippedTo), nor, of two of the first 64 with the same stride, unless
// the one is 17 messages or more behind the other; the first 2,048 walk
// the messages each its own way. With every one of the first 64 given
// stride 1, connection 1's k-th message was connection 0's (k+1)-th,
// and a server crossing their replies was reported as skipping one.
func TestPickTellsConnectionsApart(t *testing.T) {
	walks := map[[2]int]int{}
	for i := range 2048 {
		w := [2]int{pick(i, 0), pick(i, 1)}
		if o, ok := walks[w]; ok {
			t.Fatalf("connections %d and %d walk the messages alike", o, i)
		}
		walks[w] = i
	}
	for i := range 128 {
		for o := range 128 {
			if o == i {
				continue
			}
			for k := range uint64(distinct) {
				if i < 64 && o < 64 && pick(i, k) == pick(o, k) {
					t.Fatalf("connections %d and %d: message %d is the same, %d", i, o, k, pick(i, k))
				}
				for q := range uint64(distinct) {
					for j := uint64(1); j <= maxSkip; j++ {
						lag := (k - q + distinct) % distinct // o behind i
						same := o%32 == i%32 && (i >= 64 || o >= 64 || lag >= 17 && lag <= distinct-17)
						if !same && pick(o, q) == pick(i, k+j) && pick(o, q+1) == pick(i, k+j+1) {
							t.Fatalf("connection %d's messages %d and %d are connection %d's %d and %d: crossed, taken for %d skipped",
								o, q, q+1, i, k+j, k+j+1, j)
						}
					}
				}
			}
		}
	}
}
