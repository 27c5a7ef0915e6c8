package upper

//go:generate go run gen.go

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
	"golang.org/x/text/transform"
)

// Mode selects the mapping a Transformer applies.
type Mode uint8

const (
	// Upper is full Unicode uppercase, byte-identical to
	// cases.Upper(language.Und): "straße" → "STRASSE", "ﬁ" → "FI".
	Upper Mode = iota
	// Simple maps each rune with unicode.ToUpper, keeping the rune count:
	// "straße" → "STRAßE".
	Simple
	// ASCII changes only the bytes a–z, as Python's bytes.upper().
	ASCII
	// Echo changes nothing: an RFC 862 echo.
	Echo
)

var modeNames = [...]string{Upper: "upper", Simple: "simple", ASCII: "ascii", Echo: "echo"}

// ModeNames lists the names ParseMode accepts, in Mode order.
func ModeNames() []string { return modeNames[:] }

// String returns the mode's name, as ParseMode accepts it.
func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", m)
}

// ErrUnknownMode is returned by ParseMode for a name it does not know.
var ErrUnknownMode = errors.New("upper: unknown mode")

// ParseMode returns the Mode named s (upper, simple, ascii or echo).
func ParseMode(s string) (Mode, error) {
	for m, name := range modeNames {
		if strings.EqualFold(s, name) {
			return Mode(m), nil
		}
	}
	return 0, fmt.Errorf("%w %q (want one of %s)", ErrUnknownMode, s, strings.Join(modeNames[:], ", "))
}

// MaxExpansion is the most bytes any Transformer writes per byte it
// consumes: U+0390 "ΐ" (2 bytes) becomes "Ϊ́" (6 bytes) in Upper mode.
// A dst of MaxExpansion*len(src) bytes always takes a whole src in one call.
const MaxExpansion = 3

// Transformer upper-cases a stream of bytes in the chosen Mode. It
// implements transform.Transformer; it keeps no state
// between calls (the only bytes it leaves unconsumed are an incomplete
// UTF-8 sequence at the end of src, which transform callers carry over), so
// one Transformer may serve any number of streams at once.
//
// The zero value upper-cases in Upper mode with no language tailoring.
type Transformer struct {
	mode Mode
	tab  *table // Upper and Simple: the mapping; nil means fullUnd
	// ref is set for the tailoring whose rules look ahead past the current
	// character (Greek); it is delegated to x/text, whose upper casers keep
	// no state between calls.
	ref transform.Transformer
}

var _ transform.Transformer = (*Transformer)(nil)

// New returns a Transformer for mode, tailored for the BCP 47 language tag
// lang ("" or "und" for none). Tailoring applies to Upper and Simple:
// Turkish and Azeri (tr, az) map "i" to "İ" and, for Upper only, Greek (el)
// drops accents. Lithuanian (lt) is refused: x/text/cases, the only
// implementation at hand, leaves the letter after a removed dot above in
// lowercase ("i̇s" → "Is"). Other languages have no uppercase tailoring in
// Unicode and map as "und".
func New(mode Mode, lang string) (*Transformer, error) {
	if int(mode) >= len(modeNames) {
		return nil, fmt.Errorf("%w %d", ErrUnknownMode, mode)
	}
	t := &Transformer{mode: mode}
	base := "und"
	if lang != "" {
		tag, err := language.Parse(lang)
		if err != nil {
			return nil, languageError(lang, err)
		}
		b, _ := tag.Base()
		base = b.String()
	}
	turkic := base == "tr" || base == "az"
	if base == "lt" {
		return nil, fmt.Errorf("upper: language %q: Lithuanian uppercase is not supported (x/text/cases leaves the letter after a removed dot above in lowercase)", lang)
	}
	switch mode {
	case Upper:
		switch {
		case turkic:
			t.tab = &fullTurkic
		case base == "el":
			t.tab = &fullUnd // for MaxExpansion; the caser does the work
			t.ref = cases.Upper(language.Greek)
		default:
			t.tab = &fullUnd
		}
	case Simple:
		switch {
		case turkic:
			t.tab = &simpleTurkic
		case base == "el":
			return nil, fmt.Errorf("upper: language %q is tailored for mode upper only", lang)
		default:
			t.tab = &simpleUnd
		}
	default:
		if turkic || base == "el" {
			return nil, fmt.Errorf("upper: language %q has no meaning in mode %s", lang, mode)
		}
	}
	return t, nil
}

// languageError words err, language.Parse's of lang, without x/text's
// package name ("language: subtag \"zz\" is well-formed but unknown",
// "language: tag is not well-formed").
func languageError(lang string, err error) error {
	if unknown, ok := err.(language.ValueError); ok {
		return fmt.Errorf("upper: language %q: %q is no language, script or region known", lang, unknown.Subtag())
	}
	why := strings.TrimPrefix(err.Error(), "language: ")
	if why == "tag is not well-formed" { // language.ErrSyntax, which x/text keeps internal
		return fmt.Errorf("upper: language %q is not a language tag, such as tr, az or el (BCP 47)", lang)
	}
	return fmt.Errorf("upper: language %q: %s", lang, why)
}

// Mode returns the transformer's mode.
func (t *Transformer) Mode() Mode { return t.mode }

// MaxExpansion returns the most bytes t writes per byte it consumes: 3 for
// Upper, 2 for Simple (U+023F "ȿ", 2 bytes, becomes 3), 1 for ASCII and Echo.
func (t *Transformer) MaxExpansion() int {
	switch t.mode {
	case Upper, Simple:
		return t.table().maxExpansion
	}
	return 1
}

// LookAhead reports whether t may hold back complete characters until it
// sees what follows them. Only the Greek tailoring does: it removes
// accents that follow a letter, so a letter at the end of a read is answered
// when the next character, or the end of input, arrives.
func (t *Transformer) LookAhead() bool { return t.ref != nil }

// Reset implements transform.Transformer; a Transformer has no state to reset.
func (t *Transformer) Reset() {}

func (t *Transformer) table() *table {
	if t.tab == nil {
		return &fullUnd
	}
	return t.tab
}

// Transform implements transform.Transformer. It consumes all of src but
// an incomplete UTF-8 sequence at its end that could still become a
// character whose uppercase differs (at most 3 bytes, and only when atEOF
// is false); bytes that are not valid UTF-8 are copied unchanged.
func (t *Transformer) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	switch {
	case t.ref != nil:
		return t.ref.Transform(dst, src, atEOF)
	case t.mode == Echo:
		n := copy(dst, src)
		if n < len(src) {
			err = transform.ErrShortDst
		}
		return n, n, err
	case t.mode == ASCII:
		n := min(len(dst), len(src))
		upperASCII(dst[:n], src[:n])
		if n < len(src) {
			err = transform.ErrShortDst
		}
		return n, n, err
	}
	return t.table().transform(dst, src, atEOF)
}

// Append appends the uppercase of the whole of src, as one complete input,
// to dst and returns the extended slice.
func (t *Transformer) Append(dst, src []byte) []byte {
	for {
		n := len(dst)
		if need := n + t.MaxExpansion()*len(src); need > cap(dst) {
			dst = append(dst[:cap(dst)], make([]byte, need-cap(dst))...)
		}
		nDst, nSrc, err := t.Transform(dst[n:cap(dst)], src, true)
		dst = dst[:n+nDst]
		src = src[nSrc:]
		if err == nil || len(src) == 0 {
			return dst
		}
		// Only a look-ahead tailoring can end short of the bound: grow.
		dst = append(dst, 0)[:len(dst)]
	}
}

// String returns the uppercase of s.
func (t *Transformer) String(s string) string {
	return string(t.Append(nil, []byte(s)))
}

// Byte classes of a table: what the transform loop does at a byte.
const (
	// classCopy: the byte is copied as it is, because every sequence it can
	// start maps to itself: a continuation byte, a byte that never starts a
	// valid sequence, or the lead byte of a range with no cased character
	// (CJK, Hangul, most of the supplementary planes).
	classCopy = 0
	// classDecode: the byte may start a character that changes.
	classDecode = 1
)

// table is one generated mapping (see gen.go).
type table struct {
	maxExpansion int
	plainASCII   bool     // ASCII maps exactly a–z → A–Z
	index        []uint16 // rune>>6 → block in mapValues; runes past it do not change
	class        [256]uint8
}

// lookup returns the replacement of r, or "" if r maps to itself.
func (tb *table) lookup(r rune) string {
	bi := int(r >> 6)
	if bi >= len(tb.index) {
		return ""
	}
	v := mapValues[int(tb.index[bi])<<6|int(r&63)]
	return mapData[v>>8 : v>>8+v&0xff]
}

func (tb *table) transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		b := src[nSrc]
		if b < utf8.RuneSelf && tb.plainASCII {
			// A run of eight or more: SWAR. A short one: byte by byte, as a
			// call per word would cost more than it saves.
			if nSrc+8 <= len(src) && nDst+8 <= len(dst) && binary.LittleEndian.Uint64(src[nSrc:])&msb == 0 {
				n := asciiRun(dst[nDst:], src[nSrc:])
				nDst += n
				nSrc += n
				continue
			}
			if nDst == len(dst) {
				return nDst, nSrc, transform.ErrShortDst
			}
			if 'a' <= b && b <= 'z' {
				b -= 'a' - 'A'
			}
			dst[nDst] = b
			nDst++
			nSrc++
			continue
		}
		if tb.class[b] != classDecode {
			end := nSrc + 1
			for end < len(src) && src[end] >= utf8.RuneSelf && tb.class[src[end]] == classCopy {
				end++
			}
			n := copy(dst[nDst:], src[nSrc:end])
			nDst += n
			nSrc += n
			if nSrc < end {
				return nDst, nSrc, transform.ErrShortDst
			}
			continue
		}
		r, size := rune(b), 1
		switch {
		case b < utf8.RuneSelf:
		case b < 0xe0 && nSrc+1 < len(src):
			// Two-byte sequences (Latin, Greek, Cyrillic) decoded inline.
			if c := src[nSrc+1]; c&0xc0 == 0x80 {
				r, size = rune(b&0x1f)<<6|rune(c&0x3f), 2
			} else {
				r = utf8.RuneError
			}
		case !utf8.FullRune(src[nSrc:]):
			// A valid prefix cut short: wait for the rest, or at the end of
			// input copy it as the invalid bytes it is.
			if !atEOF {
				return nDst, nSrc, transform.ErrShortSrc
			}
			n := copy(dst[nDst:], src[nSrc:])
			nDst += n
			nSrc += n
			if nSrc < len(src) {
				return nDst, nSrc, transform.ErrShortDst
			}
			return nDst, nSrc, nil
		default:
			r, size = utf8.DecodeRune(src[nSrc:])
		}
		rep := tb.lookup(r)
		if rep == "" || size == 1 && r == utf8.RuneError {
			if len(dst)-nDst < size {
				return nDst, nSrc, transform.ErrShortDst
			}
			copy(dst[nDst:], src[nSrc:nSrc+size])
			nDst += size
			nSrc += size
			continue
		}
		if len(dst)-nDst < len(rep) {
			return nDst, nSrc, transform.ErrShortDst
		}
		if len(rep) == 2 { // most replacements; cheaper than a copy call
			dst[nDst], dst[nDst+1] = rep[0], rep[1]
			nDst += 2
		} else {
			nDst += copy(dst[nDst:], rep)
		}
		nSrc += size
	}
	return nDst, nSrc, nil
}
