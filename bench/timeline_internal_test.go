package bench

import (
	"math"
	"testing"
)

// A timeline keeps at most maxTimeline entries however long the run,
// merging them so that nothing counted is lost from it: it had one a
// second for ever.
func TestTimelineBounded(t *testing.T) {
	was := maxTimeline
	maxTimeline = 8
	defer func() { maxTimeline = was }()
	var tl []Second
	const seconds = 100
	for k := 1; k <= seconds; k++ {
		tl = appendSecond(tl, Second{T: float64(k), MessagesPerSec: float64(k % 2 * 20), P99US: float64(k), Wrong: 1, Lost: 2})
		if len(tl) > maxTimeline {
			t.Fatalf("after %d seconds, %d entries: more than %d", k, len(tl), maxTimeline)
		}
	}
	var wrong, lost int64
	msgs, from := 0.0, 0.0
	for _, s := range tl {
		wrong += s.Wrong
		lost += s.Lost
		msgs += s.MessagesPerSec * (s.T - from)
		from = s.T
	}
	if last := tl[len(tl)-1]; wrong != seconds || lost != 2*seconds || math.Abs(msgs-10*seconds) > 1e-6 || last.T != seconds || last.P99US != seconds {
		t.Errorf("%d entries: %d wrong, %d lost, %g messages, the last ends at %gs with p99 %g; want %d, %d, %d, %d, %d",
			len(tl), wrong, lost, msgs, last.T, last.P99US, seconds, 2*seconds, 10*seconds, seconds, seconds)
	}
}
