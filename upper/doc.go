// Package upper is shout's uppercase engine: a streaming
// transform.Transformer (golang.org/x/text/transform) that turns any bytes
// into their uppercase, however they are split into reads.
//
// The default mapping is full Unicode uppercase, byte for byte what
// cases.Upper(language.Und) from golang.org/x/text/cases gives and, on valid
// text, what Python 3's str.upper() gives: "straße" becomes "STRASSE" and
// "哈哈" stays as it is. Other modes are Simple (unicode.ToUpper per rune),
// ASCII (a–z only, as Python's bytes.upper()) and Echo (no change).
//
// # Streams
//
// The output is the same however the input is cut into calls. Transform
// consumes everything it is given except an incomplete UTF-8 sequence at the
// end of src that could still become a character whose uppercase differs;
// that is at most 3 bytes, never a complete character and never a newline,
// so a reply to a line never waits for more input. (Greek alone looks
// ahead and holds more: see Languages.) Bytes that are not valid
// UTF-8 (binary data, NUL, 0xFF, truncated, overlong or surrogate
// sequences) are copied unchanged, and at the end of input (atEOF) an
// incomplete sequence is copied as it is.
//
// A dst of MaxExpansion (or Transformer.MaxExpansion) times len(src) bytes
// always takes all of src in one call, so a server can read, transform once
// and write once:
//
//	t, _ := upper.New(upper.Upper, "")
//	out := make([]byte, t.MaxExpansion()*len(buf))
//	nDst, nSrc, err := t.Transform(out, buf[:n], false) // err: nil or ErrShortSrc
//
// # Languages
//
// Turkish and Azeri (tr, az) map "i" to "İ". Greek (el) removes the accents
// that follow a letter ("Οδός" → "ΟΔΟΣ"): it looks ahead, so a letter at the
// end of one read is answered only when the next character (or the end of
// input) arrives, and LookAhead reports true. Greek is delegated to
// x/text/cases; the other mappings use shout's own tables. Lithuanian is
// refused (see New). Any other tag maps as "und".
//
// # Speed
//
// ASCII is upper-cased eight bytes at a time with SWAR arithmetic; runs of
// bytes that cannot change (CJK, Hangul, continuation and invalid bytes) are
// copied without decoding; other characters are looked up in tables that
// gen.go generates from x/text (go generate). Transform does not allocate.
package upper
