package bench

import (
	"bytes"
	"testing"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

// The expected replies come from x/text and the standard library, not from
// package upper: full uppercase is cases.Upper with the --lang tag, simple
// is unicode.ToUpper (or unicode.TurkishCase) per rune.
func TestReferenceIsXText(t *testing.T) {
	samples := []string{
		"straße ﬁx ΐ\n",
		"istanbul ıi İI\n",
		"άλφα ΐ ŉ привет 你好\n",
		"ascii only: hello, world\n",
	}
	perRune := func(c unicode.SpecialCase, s string) string {
		return string(bytes.Map(c.ToUpper, []byte(s)))
	}
	for _, tc := range []struct {
		mode, lang string
		want       func(string) string
	}{
		{"upper", "", func(s string) string { return cases.Upper(language.Und).String(s) }},
		{"upper", "tr", func(s string) string { return cases.Upper(language.Turkish).String(s) }},
		{"upper", "az", func(s string) string { return cases.Upper(language.Azerbaijani).String(s) }},
		{"upper", "el", func(s string) string { return cases.Upper(language.Greek).String(s) }},
		{"", "", func(s string) string { return cases.Upper(language.Und).String(s) }},
		{"simple", "", func(s string) string { return string(bytes.Map(unicode.ToUpper, []byte(s))) }},
		{"simple", "tr", func(s string) string { return perRune(unicode.TurkishCase, s) }},
		{"ascii", "", func(s string) string {
			b := []byte(s)
			for i, c := range b {
				if 'a' <= c && c <= 'z' {
					b[i] -= 'a' - 'A'
				}
			}
			return string(b)
		}},
		{"echo", "", func(s string) string { return s }},
	} {
		t.Run(tc.mode+"/"+tc.lang, func(t *testing.T) {
			ref, err := reference(tc.mode, tc.lang)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range samples {
				if got, want := string(ref([]byte(s))), tc.want(s); got != want {
					t.Errorf("%q: got %q, want %q", s, got, want)
				}
			}
		})
	}
	// Spot checks that the samples exercise what they should.
	ref, _ := reference("upper", "tr")
	if got, want := string(ref([]byte("ßﬁΐi\n"))), "SSFI\u0399\u0308\u0301İ\n"; got != want {
		t.Errorf("upper tr: got %q, want %q", got, want)
	}
	ref, _ = reference("simple", "")
	if got, want := string(ref([]byte("ßﬁΐi\n"))), "ßﬁΐI\n"; got != want {
		t.Errorf("simple: got %q, want %q", got, want)
	}
}

func TestReferenceRefuses(t *testing.T) {
	for _, tc := range []struct{ mode, lang string }{
		{"klingon", ""},
		{"upper", "not a tag!"},
		{"simple", "el"},
	} {
		if _, err := reference(tc.mode, tc.lang); err == nil {
			t.Errorf("reference(%q, %q): no error", tc.mode, tc.lang)
		}
	}
}
