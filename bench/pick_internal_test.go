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
