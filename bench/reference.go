package bench

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

// Modes lists the replies Config.Mode can expect.
var Modes = []string{"upper", "simple", "ascii", "echo"}

// reference returns what computes the reply a message should get in mode,
// tailored for the BCP 47 tag lang. It is independent of shout's engine
// (package upper), so a bug there is caught instead of being checked
// against itself: upper is x/text's cases.Upper, simple is unicode.ToUpper
// per rune (unicode.TurkishCase for tr and az), ascii changes a–z only and
// echo nothing. The function it returns is safe for concurrent use.
func reference(mode, lang string) (func(msg []byte) []byte, error) {
	tag := language.Und
	if lang != "" {
		var err error
		if tag, err = language.Parse(lang); err != nil {
			return nil, fmt.Errorf("bench: language %q: %w", lang, err)
		}
	}
	base, _ := tag.Base()
	switch strings.ToLower(mode) {
	case "", "upper":
		// A Caser keeps state: one per call. Calls are once per distinct
		// message, not per message sent.
		return func(msg []byte) []byte { return cases.Upper(tag).Bytes(msg) }, nil
	case "simple":
		special := unicode.SpecialCase(nil)
		switch base.String() {
		case "tr", "az":
			special = unicode.TurkishCase
		case "el":
			return nil, fmt.Errorf("bench: language %q is tailored for mode upper only", lang)
		}
		return func(msg []byte) []byte { return simpleUpper(special, msg) }, nil
	case "ascii":
		return func(msg []byte) []byte {
			out := make([]byte, len(msg))
			for i, c := range msg {
				if 'a' <= c && c <= 'z' {
					c -= 'a' - 'A'
				}
				out[i] = c
			}
			return out
		}, nil
	case "echo":
		return func(msg []byte) []byte { return append([]byte(nil), msg...) }, nil
	}
	return nil, fmt.Errorf("bench: unknown mode %q (want one of %s)", mode, strings.Join(Modes, ", "))
}

// simpleUpper maps each rune of msg to one rune, with special if it is not
// nil; bytes that are not valid UTF-8 are copied as they are.
func simpleUpper(special unicode.SpecialCase, msg []byte) []byte {
	out := make([]byte, 0, len(msg)+len(msg)/2)
	for len(msg) > 0 {
		r, n := utf8.DecodeRune(msg)
		if r == utf8.RuneError && n <= 1 {
			out = append(out, msg[0])
			msg = msg[1:]
			continue
		}
		if special != nil {
			r = special.ToUpper(r)
		} else {
			r = unicode.ToUpper(r)
		}
		out = utf8.AppendRune(out, r)
		msg = msg[n:]
	}
	return out
}
