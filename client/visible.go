package client

import (
	"io"
	"unicode"
	"unicode/utf8"
)

// visible makes what a server sends safe to show on a terminal, as cat -v
// does: a control character becomes ^X (ESC is ^[, DEL ^?), a C1 control
// M-^X, a byte that is not UTF-8 M-x, and an invisible format character
// (a bidi control, a zero-width one) its bytes so; text, tabs and
// newlines pass, and so
// does the "\r" of a "\r\n". It keeps what a read cut short (half a
// character, a "\r" that may come before "\n") for the next call.
type visible struct {
	carry []byte
}

// append appends the visible form of p to dst. With atEOF, nothing is
// kept back.
func (v *visible) append(dst, p []byte, atEOF bool) []byte {
	data := p
	if len(v.carry) > 0 {
		data = append(v.carry, p...)
		v.carry = nil
	}
	for i := 0; i < len(data); {
		b := data[i]
		switch {
		case b == '\n' || b == '\t':
			dst = append(dst, b)
			i++
		case b == '\r':
			if i+1 == len(data) && !atEOF {
				v.carry = append(v.carry[:0], b)
				return dst
			}
			if i+1 < len(data) && data[i+1] == '\n' {
				i++ // "\r\n": a line end
				continue
			}
			dst = append(dst, '^', 'M')
			i++
		case b < 0x20 || b == 0x7f:
			dst = append(dst, '^', b^0x40)
			i++
		case b < utf8.RuneSelf:
			dst = append(dst, b)
			i++
		default:
			if !atEOF && !utf8.FullRune(data[i:]) {
				v.carry = append(v.carry[:0], data[i:]...)
				return dst
			}
			r, n := utf8.DecodeRune(data[i:])
			switch {
			case r == utf8.RuneError && n == 1: // not UTF-8: cat -v's M-x
				dst = appendMeta(dst, b)
			case r < 0xa0: // C1 control, as in 8-bit cat -v
				dst = appendMeta(dst, byte(r))
			case unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029':
				// Invisible, and a bidi control reorders what follows on
				// a terminal that does bidi: its bytes as cat -v shows
				// them (U+202E is M-bM-^@M-.).
				for _, c := range data[i : i+n] {
					dst = appendMeta(dst, c)
				}
			default:
				dst = append(dst, data[i:i+n]...)
			}
			i += n
		}
	}
	return dst
}

// appendMeta appends cat -v's form of b, a byte of 0x80 or more: M- and
// the form of b-0x80, ^X for a control character.
func appendMeta(dst []byte, b byte) []byte {
	c := b - 0x80
	dst = append(dst, 'M', '-')
	if c < 0x20 || c == 0x7f {
		return append(dst, '^', c^0x40)
	}
	return append(dst, c)
}

// Visible is a writer that passes what is written to it on to W as the
// prompt shows a server's bytes (cat -v's ^[ for ESC, M-^[ for a C1
// control, bidi and zero-width characters as their bytes): for a reply
// on its way to a terminal, which would obey the server's escape
// sequences. It may hold back a few bytes (half a character, a "\r"
// that may come before "\n") until the next Write; Flush writes them.
type Visible struct {
	W   io.Writer
	v   visible
	buf []byte
}

// Write writes p's visible form to W, and reports all of p written if W
// took it all.
func (v *Visible) Write(p []byte) (int, error) {
	v.buf = v.v.append(v.buf[:0], p, false)
	if len(v.buf) > 0 {
		if _, err := v.W.Write(v.buf); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush writes what Write held back.
func (v *Visible) Flush() error {
	v.buf = v.v.append(v.buf[:0], nil, true)
	if len(v.buf) == 0 {
		return nil
	}
	_, err := v.W.Write(v.buf)
	return err
}
