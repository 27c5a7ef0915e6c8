package client

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzVisible checks visible on anything a server may send, cut into
// reads anywhere: what it shows is the same however the reads cut it;
// it is UTF-8 with no control or invisible format character but tab and
// newline, so a server cannot drive the terminal; every newline comes
// through, one for one; and text that is all visible (and tabs and
// newlines) comes through as it is.
func FuzzVisible(f *testing.F) {
	for _, s := range []string{
		"HELLO EGON 哈哈哈\tSTRASSE\n", "\x1b[2J\x1b[H", "\a\x00\x7f", "A\r\nB\r\nC", "A\rB\r",
		"\u009b2J", "\xff\x9b\xe4", "\xe5\x93\x88!", "A\u202eEVIL\u2066B\u200fC\u200b\n", "A\u2028B\u2029",
		"\xf0\x9f\x98", "\xed\xa0\x80", "\xc0\xaf",
	} {
		f.Add([]byte(s), uint64(len(s)))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		var whole visible
		want := whole.append(nil, data, true)

		r := rand.New(rand.NewPCG(seed, seed>>32))
		var v visible
		var got []byte
		for rest := data; ; {
			n := r.IntN(len(rest) + 1)
			got = v.append(got, rest[:n], n == len(rest))
			if rest = rest[n:]; len(rest) == 0 {
				break
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%q cut into reads shows %q, whole %q", data, got, want)
		}
		if len(v.carry) > 0 {
			t.Fatalf("%q: %q kept back at the end", data, v.carry)
		}
		if !utf8.Valid(want) {
			t.Fatalf("%q shows %q: not UTF-8", data, want)
		}
		for _, c := range string(want) {
			if c != '\n' && c != '\t' && (unicode.IsControl(c) || unicode.Is(unicode.Cf, c) || c == '\u2028' || c == '\u2029') {
				t.Fatalf("%q shows %q, with %U", data, want, c)
			}
		}
		if in, out := bytes.Count(data, []byte{'\n'}), bytes.Count(want, []byte{'\n'}); in != out {
			t.Fatalf("%q shows %q: %d newlines, want %d", data, want, out, in)
		}
		plain := utf8.Valid(data) && !strings.ContainsFunc(string(data), func(c rune) bool {
			return c != '\n' && c != '\t' && !unicode.IsGraphic(c)
		})
		if plain && !bytes.Equal(want, data) {
			t.Fatalf("text %q shows %q, not as it is", data, want)
		}
	})
}
