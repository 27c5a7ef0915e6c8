package bench

import (
	"strings"
	"testing"
)

// The first wrong reply is shown cut at characters, not in the middle of
// one: a lone byte of "ж" shows as "\xb6", which reads as if the server
// had sent invalid UTF-8. Only what the server did send so shows.
func TestFirstMismatchCutAtCharacters(t *testing.T) {
	zh := strings.Repeat("ж", 40) // two bytes each
	for _, tc := range []struct {
		name, got, want, shown string
	}{
		// The difference at byte 61: shown from byte 20, not 21.
		{"start", zh[:60] + "AQC\n", zh[:60] + "ABC\n", `got "` + zh[:40] + `AQC\n", want "` + zh[:40] + `ABC\n" (first difference at byte 61, shown from byte 20)`},
		// The difference at byte 50: shown to byte 89, not 90.
		{"end", strings.Repeat("A", 50) + "Q" + zh + "\n", strings.Repeat("A", 50) + "B" + zh + "\n",
			`got "` + strings.Repeat("A", 40) + "Q" + zh[:38] + `", want "` + strings.Repeat("A", 40) + "B" + zh[:38] + `" (first difference at byte 50, shown from byte 10)`},
		// A server's own invalid byte is shown as it came.
		{"server's", zh[:10] + "\xb6\n", zh[:10] + "ж\n", `got "` + zh[:10] + `\xb6\n", want "` + zh[:10] + `ж\n" (first difference at byte 10)`},
	} {
		r := &run{}
		r.mismatch([]byte(tc.got), []byte(tc.want), false)
		if got := (*r.firstMismatch.Load()).Error(); got != tc.shown {
			t.Errorf("%s: shown as\n%s\nwant\n%s", tc.name, got, tc.shown)
		}
	}
}

// Bytes that answer no message are shown cut at characters too.
func TestUnaskedCutAtCharacters(t *testing.T) {
	got := "A" + strings.Repeat("ж", 50) + "\n" // byte 80 is within a "ж"
	r := &run{}
	wrong := false
	r.unasked(&wrong, true, false, []byte(got))
	if shown, want := (*r.firstMismatch.Load()).Error(), `got "A`+strings.Repeat("ж", 39)+`", which answers no message`; shown != want {
		t.Errorf("shown as\n%s\nwant\n%s", shown, want)
	}
}

// Bytes that answer no message in the warm-up, which no measured count
// takes (WarmupWrong does), make no measured wrong reply "after an
// earlier wrong reply", as a wrong reply in the warm-up does not
// (TestWarmupWrongReplyIsNoEarlierOne); measured, they do.
func TestUnaskedInWarmupIsNoEarlierOne(t *testing.T) {
	for _, measured := range []bool{false, true} {
		r := &run{}
		wrong := false
		r.unasked(&wrong, measured, !measured, []byte("STRAY\n"))
		r.streamMismatch(&wrong, sentMsg{measured: true}, []byte("B\n"), []byte("A\n"), false)
		after, wrongs, warm := int64(0), int64(1), int64(1)
		if measured {
			after, wrongs, warm = 1, 2, 0
		}
		if r.mismatchesAfter.Load() != after || r.mismatches.Load() != wrongs || r.warmWrong.Load() != warm {
			t.Errorf("stray bytes (measured %v), then a measured wrong reply: %d wrong, %d of them after an earlier wrong one, %d in the warm-up; want %d, %d, %d",
				measured, r.mismatches.Load(), r.mismatchesAfter.Load(), r.warmWrong.Load(), wrongs, after, warm)
		}
	}
}
