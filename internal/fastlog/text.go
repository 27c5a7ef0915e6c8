package fastlog

import (
	"unicode"
	"unicode/utf8"
)

// needsQuoting is slog's rule for a text value, a byte looked up in a
// table until one is not ASCII.
func needsQuoting(s string) bool {
	if len(s) == 0 {
		return true
	}
	for i := 0; i < len(s); i++ {
		switch textKind[s[i]] {
		case plainByte:
			continue
		case quotedByte:
			return true
		}
		for _, r := range s[i:] { // a rune at a time from the first byte past ASCII
			if r == utf8.RuneError || r >= utf8.RuneSelf && (unicode.IsSpace(r) || !unicode.IsPrint(r)) || r < utf8.RuneSelf && textKind[r] == quotedByte {
				return true
			}
		}
		return false
	}
	return false
}

// textKind is what each byte is to needsQuoting: controls, space, '"'
// and '=' are quoted (not a backslash, nor DEL).
var textKind = byteKinds(func(c byte) bool { return c <= ' ' || c == '"' || c == '=' })
