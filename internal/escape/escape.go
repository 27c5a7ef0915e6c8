// Package escape makes text safe to print on a terminal: what a server
// chose (a certificate's names) or a user typed (a file's name) may hold
// ESC, newlines and other characters that, printed raw, move the cursor,
// clear the screen or forge a line of shout's own.
package escape

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"shout/internal/named"
)

// Printable is s with every character that is not printable (control
// characters, DEL, C1 controls, bidi and other invisible format
// characters) written as a Go escape (\x1b, \n, \u202e) and a byte that is
// not UTF-8 as \xff. Unlike strconv.Quote it leaves quotes and
// backslashes alone: the text already quoted in an error (crypto/x509's
// %q) reads as it did, and text escaped once is escaped no further.
//
// It is for presentation: a line made for a terminal, escaped as a whole
// where it is printed, not data that a program reads back (a name a
// backslash and "x1b" in reads as one with ESC). Errors carry their
// names as they are, and a log's handler escapes its values itself.
// What a client sent is data: server.Escape quotes it reversibly.
func Printable(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !shown(r) }) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], string(utf8.RuneError)):
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case shown(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r) // '\x1b'
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}

// shown reports whether r prints as itself: what unicode.IsPrint takes;
// the ideographic space (U+3000), full-width, of CJK file names; and the
// zero width joiner and non-joiner, which join an emoji sequence (👩‍💻)
// and the letters of Persian and Indic words. None moves the cursor or
// reorders the line (the bidi controls, which do, stay escaped). Spaces
// that look like ' ' (U+00A0, as pasted) stay escaped too: the name is
// not the one it looks like.
func shown(r rune) bool {
	return unicode.IsPrint(r) || r == '\u3000' || r == '\u200c' || r == '\u200d'
}

// Error is Err with its text Printable, and still Err for errors.Is and
// errors.As: for an error whose text holds what a server chose (a
// handshake's, its certificate's names), which client's callers print.
type Error struct{ Err error }

func (e Error) Error() string { return Printable(e.Err.Error()) }
func (e Error) Unwrap() error { return e.Err }

// Rewrite makes Error a named.Rewriter: named.Text finds a named error's
// text in it escaped, and escapes the renamed text.
func (e Error) Rewrite(s string) string { return Printable(s) }

var _ named.Rewriter = Error{}
