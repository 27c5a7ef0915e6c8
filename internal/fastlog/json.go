package fastlog

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// appendJSONString appends s quoted as slog.JSONHandler writes a key or
// a string (encoding/json's escapes, but for HTML's characters, which it
// leaves): '"', '\\' and the controls escaped, invalid UTF-8 as U+FFFD,
// and U+2028 and U+2029 escaped, as JavaScript takes them for line ends.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		for i < len(s) && jsonKind[s[i]] == plainByte { // most of a line, in as tight a loop as can be
			i++
		}
		if i == len(s) {
			break
		}
		if c := s[i]; c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			if r == utf8.RuneError {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			}
			start = i + size
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hex = "0123456789abcdef"

// jsonKind is what each byte is to appendJSONString: the controls, '"'
// and '\\' are escaped (not DEL, nor '<', '>' and '&', as slog has
// encoding/json leave HTML's characters).
var jsonKind = byteKinds(func(c byte) bool { return c < ' ' || c == '"' || c == '\\' })

// appendJSONFloat appends f as encoding/json does, which slog.JSONHandler
// has write it: the shortest decimal that reads back as f, in an exponent
// form below 1e-6 and from 1e21; false for NaN and the infinities, which
// JSON has no number for (slog writes encoding/json's error instead).
func appendJSONFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if n := len(b); format == 'e' && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' { // e-07 as e-7
		b[n-2] = b[n-1]
		b = b[:n-1]
	}
	return b, true
}
