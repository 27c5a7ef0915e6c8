package bench

import (
	"bytes"
	"math"
	"strconv"
	"testing"
)

// A datagram's tag names one sequence number, or none: what bench matches
// a reply to its datagram by. Truncated, foreign or altered tags must
// never name a datagram they do not answer, nor a body change the number.
func TestSeqOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    string
		seq  uint64
		ok   bool
	}{
		{"zero, no body", "00000000000000000000", 0, true},
		{"with a body", "00000000000000000042HELLO\n", 42, true},
		{"a body of digits", "0000000000000000000799999", 7, true},
		{"the largest", "18446744073709551615X", math.MaxUint64, true},
		{"past the largest", "18446744073709551616X", 0, false},
		{"all nines", "99999999999999999999", 0, false},
		{"truncated", "0000000000000000004", 0, false},
		{"empty", "", 0, false},
		{"a sign", "+0000000000000000042X", 0, false},
		{"a minus", "-0000000000000000042X", 0, false},
		{"a space", " 0000000000000000042X", 0, false},
		{"an underscore", "0_000000000000000042X", 0, false},
		{"hex", "0x000000000000000042X", 0, false},
		{"foreign text", "HELLO, WORLD, HOW ARE YOU", 0, false},
		{"a letter inside", "000000000000000000A2", 0, false},
		{"a non-ASCII digit", "000000000000000000٤2", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seq, ok := seqOf([]byte(tc.d))
			if seq != tc.seq || ok != tc.ok {
				t.Errorf("seqOf(%q) = %d, %v; want %d, %v", tc.d, seq, ok, tc.seq, tc.ok)
			}
		})
	}
}

// FuzzSeq: every sequence number's tag is seqLen bytes and names it,
// whatever body follows; and any bytes name a number only if their
// first seqLen are its digits, so a reply cut short, changed in its tag,
// or from elsewhere is never taken for another datagram's.
func FuzzSeq(f *testing.F) {
	for _, seed := range []struct {
		seq  uint64
		body string
	}{{0, ""}, {1, "A\n"}, {math.MaxUint64, "ß"}, {12345678901234567890, "00000000000000000001"}} {
		f.Add(seed.seq, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, seq uint64, rest []byte) {
		tag := appendSeq(nil, seq)
		if len(tag) != seqLen {
			t.Fatalf("appendSeq(%d) = %q: %d bytes, want %d", seq, tag, len(tag), seqLen)
		}
		d := append(tag, rest...)
		if got, ok := seqOf(d); !ok || got != seq {
			t.Fatalf("seqOf(%q) = %d, %v; want %d", d, got, ok, seq)
		}
		for k := range seqLen { // cut short: no number
			if _, ok := seqOf(d[:k]); ok {
				t.Fatalf("seqOf(%q), %d bytes, names a number", d[:k], k)
			}
		}
		// rest as a datagram of its own: a number only if its first
		// seqLen bytes are the digits of one, and then that one.
		got, ok := seqOf(rest)
		want, err := uint64(0), error(nil)
		digits := len(rest) >= seqLen && len(bytes.Trim(rest[:seqLen], "0123456789")) == 0
		if digits {
			if want, err = strconv.ParseUint(string(rest[:seqLen]), 10, 64); err != nil {
				want = 0 // past a uint64: none
			}
		}
		if wantOK := digits && err == nil; ok != wantOK || got != want {
			t.Fatalf("seqOf(%q) = %d, %v; want %d, %v", rest, got, ok, want, wantOK)
		}
	})
}
