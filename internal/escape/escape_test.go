package escape_test

import (
	"testing"

	"shout/internal/escape"
)

func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text, \"quoted\" and a\\b", "plain text, \"quoted\" and a\\b"},
		{"straße 哈哈", "straße 哈哈"},
		// Names in CJK and emoji print as they are: a full-width space,
		// an emoji sequence's zero width joiners.
		{"日本\u3000語 👩\u200d💻 👨\u200d👩\u200d👧 🇯🇵 👍🏽", "日本\u3000語 👩\u200d💻 👨\u200d👩\u200d👧 🇯🇵 👍🏽"},
		{"\x1b[2J\r\n\t\x00\x7f", `\x1b[2J\r\n\t\x00\x7f`},
		{"\u0085\u009b", `\u0085\u009b`},
		{"no-break\u00a0space", `no-break\u00a0space`}, // (not the name it looks like)
		{"a\u202eb\u200bc", `a\u202eb\u200bc`},
		{"bad \xff\xc3 end", `bad \xff\xc3 end`},
		{"kept \ufffd", "kept \ufffd"},
	} {
		if got := escape.Printable(tc.in); got != tc.want {
			t.Errorf("Printable(%q) = %s, want %s", tc.in, got, tc.want)
		}
		// Escaped text escaped again reads as it did: shout's run
		// escapes every error it prints, a handshake's (escape.Error's)
		// included.
		if got := escape.Printable(tc.want); got != tc.want {
			t.Errorf("Printable(%q) = %s, want it unchanged", tc.want, got)
		}
	}
}
