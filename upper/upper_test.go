package upper

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
	"golang.org/x/text/transform"
)

// variant is one mode and language, with the reference it must match.
type variant struct {
	name string
	mode Mode
	lang string
	ref  func(src []byte) []byte
}

func casesRef(tag language.Tag) func([]byte) []byte {
	return func(src []byte) []byte { return cases.Upper(tag).Bytes(src) }
}

// perRune applies f to every valid rune and copies invalid bytes.
func perRune(f func(rune) rune) func([]byte) []byte {
	return func(src []byte) []byte {
		out := make([]byte, 0, len(src))
		for len(src) > 0 {
			r, n := utf8.DecodeRune(src)
			if r == utf8.RuneError && n == 1 {
				out = append(out, src[0])
			} else {
				out = utf8.AppendRune(out, f(r))
			}
			src = src[n:]
		}
		return out
	}
}

func asciiRef(src []byte) []byte {
	out := bytes.Clone(src)
	for i, c := range out {
		if 'a' <= c && c <= 'z' {
			out[i] = c - 32
		}
	}
	return out
}

var variants = []variant{
	{"upper", Upper, "", casesRef(language.Und)},
	{"upper-tr", Upper, "tr", casesRef(language.Turkish)},
	{"upper-az", Upper, "az", casesRef(language.Azerbaijani)},
	{"simple", Simple, "", perRune(unicode.ToUpper)},
	{"simple-tr", Simple, "tr", perRune(unicode.TurkishCase.ToUpper)},
	{"ascii", ASCII, "", asciiRef},
	{"echo", Echo, "", bytes.Clone},
}

func mustNew(t testing.TB, mode Mode, lang string) *Transformer {
	t.Helper()
	tr, err := New(mode, lang)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestEveryCodePoint checks each code point alone against the reference,
// and the worst-case expansion each mode declares.
func TestEveryCodePoint(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			tr := mustNew(t, v.mode, v.lang)
			// Reference the whole range in one call, then compare rune by rune.
			var all []byte
			for r := rune(0); r <= unicode.MaxRune; r++ {
				if utf8.ValidRune(r) {
					all = utf8.AppendRune(all, r)
					all = append(all, 0) // a separator no mapping touches
				}
			}
			want := v.ref(all)
			got := tr.Append(nil, all)
			if bytes.Equal(got, want) {
				for r := rune(0); r <= unicode.MaxRune; r++ {
					if !utf8.ValidRune(r) {
						continue
					}
					in := utf8.AppendRune(nil, r)
					if out := tr.Append(nil, in); len(out) > tr.MaxExpansion()*len(in) {
						t.Fatalf("%U: %d bytes out of %d, over MaxExpansion %d", r, len(out), len(in), tr.MaxExpansion())
					}
				}
				return
			}
			// Find the first code point that differs, for a useful message.
			for r := rune(0); r <= unicode.MaxRune; r++ {
				if !utf8.ValidRune(r) {
					continue
				}
				in := utf8.AppendRune(nil, r)
				if g, w := tr.Append(nil, in), v.ref(in); !bytes.Equal(g, w) {
					t.Fatalf("%U %q: got %q, want %q", r, in, g, w)
				}
			}
			t.Fatal("whole range differs but no code point does")
		})
	}
	if MaxExpansion < mustNew(t, Upper, "").MaxExpansion() || MaxExpansion < mustNew(t, Simple, "").MaxExpansion() {
		t.Errorf("MaxExpansion %d is below a mode's", MaxExpansion)
	}
}

func TestModes(t *testing.T) {
	tests := []struct {
		mode     Mode
		lang, in string
		want     string
	}{
		{Upper, "", "hello egon 哈哈哈", "HELLO EGON 哈哈哈"},
		{Upper, "", "straße", "STRASSE"},
		{Upper, "", "ﬁ", "FI"},
		{Upper, "", "ŉ", "ʼN"},
		{Upper, "", "ΐ", "\u0399\u0308\u0301"},
		{Upper, "", "привет", "ПРИВЕТ"},
		{Upper, "", "哈哈", "哈哈"},
		{Upper, "", "istanbul ılık", "ISTANBUL ILIK"},
		{Upper, "und", "abc", "ABC"},
		{Upper, "en-US", "straße", "STRASSE"},
		{Upper, "tr", "istanbul ılık", "İSTANBUL ILIK"},
		{Upper, "az", "istanbul", "İSTANBUL"},
		{Upper, "tr-CY", "i", "İ"},
		{Upper, "el", "Οδός", "ΟΔΟΣ"},
		{Simple, "", "straße ﬁ", "STRAßE ﬁ"},
		{Simple, "tr", "istanbul", "İSTANBUL"},
		{ASCII, "", "hello egon 哈哈哈 straße", "HELLO EGON 哈哈哈 STRAßE"},
		{Echo, "", "hello \xff", "hello \xff"},
	}
	for _, tc := range tests {
		t.Run(tc.mode.String()+"/"+tc.lang+"/"+tc.in, func(t *testing.T) {
			tr := mustNew(t, tc.mode, tc.lang)
			if got := tr.String(tc.in); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestZeroValue(t *testing.T) {
	var tr Transformer
	if got, want := tr.String("straße"), "STRASSE"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if tr.MaxExpansion() != 3 || tr.Mode() != Upper {
		t.Errorf("zero value: MaxExpansion %d mode %v", tr.MaxExpansion(), tr.Mode())
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		mode Mode
		lang string
	}{
		{Upper, "not a tag!"},
		{Simple, "el"},
		{ASCII, "tr"},
		{Echo, "lt"},
		{Mode(9), ""},
	}
	for _, tc := range tests {
		if _, err := New(tc.mode, tc.lang); err == nil {
			t.Errorf("New(%v, %q): no error", tc.mode, tc.lang)
		}
	}
	if _, err := ParseMode("shout"); !errors.Is(err, ErrUnknownMode) {
		t.Errorf("ParseMode(shout): %v, want ErrUnknownMode", err)
	}
	for _, name := range ModeNames() {
		m, err := ParseMode(strings.ToUpper(name))
		if err != nil || m.String() != name {
			t.Errorf("ParseMode(%q) = %v, %v", name, m, err)
		}
	}
}

// A language that does not parse says why in words, naming the value
// once: it said `upper: language "zz": language: subtag "zz" is
// well-formed but unknown`, x/text's package name and all.
func TestNewBadLanguageSaysWhy(t *testing.T) {
	for _, tc := range []struct {
		lang, want string
	}{
		{"not a tag!", `language "not a tag!" is not a language tag, such as tr, az or el`},
		{"xx-invalid-", `language "xx-invalid-" is not a language tag, such as tr, az or el`},
		{"zz", `language "zz": "zz" is no language, script or region known`},
	} {
		_, err := New(Upper, tc.lang)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "language: ") {
			t.Errorf("New(Upper, %q): %v; want %q in it", tc.lang, err, tc.want)
		}
	}
}

// invalid holds byte sequences that are not UTF-8 and must pass unchanged.
var invalid = []string{
	"\x00", "\xff", "\xfe\xff", "\x80", "\xbf\x80",
	"\xc0\xaf", "\xc1\xbf", // overlong 2-byte
	"\xe0\x80\xaf", "\xe0\x9f\xbf", // overlong 3-byte
	"\xf0\x80\x80\xaf", "\xf0\x8f\xbf\xbf", // overlong 4-byte
	"\xed\xa0\x80", "\xed\xbf\xbf", // surrogates
	"\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xf8\x88\x80\x80\x80", // past U+10FFFF
	"\xc3", "\xe4\xb8", "\xf0\x9f\x98", // truncated at the end of input
	"\xc3a", "\xe4\xb8a", "\xf0\x9f\x98a", // truncated by an ASCII byte
	"\xc3\xc3\xa9", "\xe2\x82\xc3\xa9", // truncated by another sequence
}

func TestInvalidPassesThrough(t *testing.T) {
	for _, v := range variants {
		tr := mustNew(t, v.mode, v.lang)
		for _, in := range invalid {
			// What surrounds the bad bytes must still be upper-cased.
			src := "é" + in + "x"
			want := tr.String("é") + in + tr.String("x")
			if strings.HasSuffix(in, "a") || strings.HasSuffix(in, "\xa9") {
				want = string(v.ref([]byte(src)))
			}
			if got := tr.String(src); got != want {
				t.Errorf("%s: %q: got %q, want %q", v.name, src, got, want)
			}
			if got, ref := tr.String(src), string(v.ref([]byte(src))); got != ref {
				t.Errorf("%s: %q: got %q, reference %q", v.name, src, got, ref)
			}
		}
	}
}

// drive runs tr over src fed in chunks of the given sizes (cycled) into a
// dst of dstSize bytes (grown only when a single character does not fit),
// as a stream transform would, and returns the output and the most bytes
// ever left unconsumed between calls.
func drive(t *testing.T, tr transform.Transformer, src []byte, chunks []int, dstSize int) (out []byte, held int) {
	t.Helper()
	var pending []byte
	dst := make([]byte, dstSize)
	for i, k := 0, 0; ; k++ {
		n := len(src) - i
		if len(chunks) > 0 {
			n = min(n, max(chunks[k%len(chunks)], 1))
		}
		pending = append(pending, src[i:i+n]...)
		i += n
		atEOF := i == len(src)
		for steps := 0; ; steps++ {
			if steps > 4*len(src)+64 {
				t.Fatalf("no progress: pending %q", pending)
			}
			nDst, nSrc, err := tr.Transform(dst, pending, atEOF)
			out = append(out, dst[:nDst]...)
			pending = pending[nSrc:]
			switch {
			case err == transform.ErrShortDst:
				if nDst == 0 && nSrc == 0 {
					dst = make([]byte, 2*len(dst)+1)
				}
				continue
			case err == transform.ErrShortSrc:
				if atEOF {
					t.Fatalf("ErrShortSrc at EOF with %q", pending)
				}
			case err != nil:
				t.Fatalf("Transform: %v", err)
			case len(pending) != 0:
				t.Fatalf("nil error but %q not consumed", pending)
			}
			break
		}
		held = max(held, len(pending))
		if u, ok := tr.(*Transformer); ok && !u.LookAhead() && len(pending) > 0 && utf8.FullRune(pending) {
			t.Fatalf("held back %q, which is no incomplete UTF-8 prefix", pending)
		}
		if atEOF {
			if len(pending) != 0 {
				t.Fatalf("%q left at EOF", pending)
			}
			return out, held
		}
	}
}

var samples = []string{
	"", "a", "hello egon 哈哈哈\n", "straße ﬁ ŉ ΐ привет\n", "istanbul ılık\n",
	"\xff\x00binary\xc3\x28\xe0\x80\x80\xed\xa0\x80ok\n", strings.Repeat("abcdefghijklmnopqrstuvwxyz0123456789", 3),
	"ǅǈǋ ᾳ ῳ ﬀﬃ ﬓ Ꞵ 𐐨𐑏 𞤢 ａｂｃ ⓐⓩ ⅰⅹ",
	"\xe4\xb8", "x\xf0\x9f\x98", // truncated at EOF
}

func TestChunkedEqualsWhole(t *testing.T) {
	for _, v := range variants {
		tr := mustNew(t, v.mode, v.lang)
		for _, s := range samples {
			want := v.ref([]byte(s))
			// every single split point, with roomy and tiny dst
			for cut := 0; cut <= len(s); cut++ {
				for _, dstSize := range []int{1, 2, 3, 7, 64} {
					got, held := drive(t, tr, []byte(s), []int{cut, len(s)}, dstSize)
					if !bytes.Equal(got, want) {
						t.Fatalf("%s %q cut at %d, dst %d: got %q, want %q", v.name, s, cut, dstSize, got, want)
					}
					if held > 3 {
						t.Fatalf("%s %q: held back %d bytes", v.name, s, held)
					}
				}
			}
			// byte by byte, through x/text's own Reader
			r := transform.NewReader(iotest.OneByteReader(strings.NewReader(s)), tr)
			if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s %q one byte at a time: got %q, %v; want %q", v.name, s, got, err, want)
			}
		}
	}
}

func TestLookAheadLanguages(t *testing.T) {
	for _, lang := range []string{"el"} {
		tr := mustNew(t, Upper, lang)
		if !tr.LookAhead() {
			t.Errorf("%s: LookAhead false", lang)
		}
		ref := cases.Upper(language.Make(lang))
		for _, s := range []string{"Οδός ἄνθρωπος", "α\u0301\u0308β\u0301γ ω\u0345δ", "straße", "\xff"} {
			want := ref.String(s)
			for cut := 0; cut <= len(s); cut++ {
				got, _ := drive(t, tr, []byte(s), []int{cut, len(s)}, 64)
				if string(got) != want {
					t.Fatalf("%s %q cut at %d: got %q, want %q", lang, s, cut, got, want)
				}
			}
		}
	}
	el := mustNew(t, Upper, "el")
	for _, in := range invalid {
		if got, want := el.String("α"+in+"β"), "Α"+in+"Β"; got != want && !strings.HasSuffix(in, "a") && !strings.HasSuffix(in, "\xa9") {
			t.Errorf("el: %q: got %q, want %q", "α"+in+"β", got, want)
		}
	}
	// The server sizes buffers by MaxExpansion: the delegated tailoring
	// must keep within it too.
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		in := utf8.AppendRune(nil, r)
		if out := el.Append(nil, in); len(out) > el.MaxExpansion()*len(in) {
			t.Fatalf("el %U: %d bytes out of %d, over MaxExpansion", r, len(out), len(in))
		}
	}
	if mustNew(t, Upper, "tr").LookAhead() || mustNew(t, Upper, "").LookAhead() {
		t.Error("LookAhead true for a tailoring with no look-ahead")
	}
}

// TestHoldBack checks what Transform leaves unconsumed when not at EOF:
// only an incomplete sequence that could still become valid.
func TestHoldBack(t *testing.T) {
	tests := []struct {
		in   string
		held string
	}{
		{"ab\xc3", "\xc3"},
		{"ab\xe2\x84", "\xe2\x84"}, // could become U+2170 ⅰ
		{"\xf0\x90\x90", "\xf0\x90\x90"},
		{"abc\n", ""},
		{"é", ""},
		{"\xe5\x93", ""}, // 哈 cut short: no CJK character changes, so nothing waits
		{"\xe0\x80", ""}, // can never be valid
		{"\xed\xa0", ""}, // a surrogate, never valid
		{"\xf5", ""},
		{"\xc3a", ""},
	}
	tr := mustNew(t, Upper, "")
	for _, tc := range tests {
		dst := make([]byte, 64)
		nDst, nSrc, err := tr.Transform(dst, []byte(tc.in), false)
		held := tc.in[nSrc:]
		if held != tc.held {
			t.Errorf("%q: held %q, want %q (err %v)", tc.in, held, tc.held, err)
		}
		if (held != "") != (err == transform.ErrShortSrc) {
			t.Errorf("%q: held %q with err %v", tc.in, held, err)
		}
		if held == "" && string(dst[:nDst]) != tr.String(tc.in) {
			t.Errorf("%q: got %q", tc.in, dst[:nDst])
		}
	}
}

func TestTransformNoAllocs(t *testing.T) {
	src := []byte(strings.Repeat("hello egon 哈哈哈 straße привет \xff", 20))
	for _, v := range variants {
		tr := mustNew(t, v.mode, v.lang)
		dst := make([]byte, tr.MaxExpansion()*len(src))
		allocs := testing.AllocsPerRun(100, func() {
			if _, _, err := tr.Transform(dst, src, false); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Transform", v.name, allocs)
		}
	}
}

func TestUpper8(t *testing.T) {
	// every byte value in every lane
	for b := range 256 {
		for lane := range 8 {
			var in [8]byte
			for i := range in {
				in[i] = byte(b + i*37)
			}
			in[lane] = byte(b)
			out := make([]byte, 8)
			upperASCII(out, in[:])
			if want := asciiRef(in[:]); !bytes.Equal(out, want) {
				t.Fatalf("% x: got % x, want % x", in, out, want)
			}
		}
	}
}
