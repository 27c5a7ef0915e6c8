package fastlog

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Handler writes slog.TextHandler's or slog.JSONHandler's lines, some of
// them faster (see the package doc). Lines it formats and lines slog's
// handler formats go to the writer one Write each, never at once.
type Handler struct {
	slow  slog.Handler // slog's handler of the format: everything the quick path does not take
	w     *LockedWriter
	lb    LineBuffer // if w's writer is one: quick lines go into it in place, not through w
	sec   second     // lb's lines' second, under lb's lock
	quick bool       // the options leave every record to the quick path's form
	f     format
}

// A LineBuffer is a writer whose lines wait in a buffer under its own
// lock, as asynclog's do: a Handler on it appends its quick lines to that
// buffer in place, under that lock, where it would format each into a
// pooled scratch buffer and write it under a LockedWriter's lock, to be
// copied into the buffer under the buffer's (a churned connection's two
// lines: some 400 user-space instructions fewer, BENCHMARKS.md, stop 57).
// Its Write takes slog's lines, one at a time.
type LineBuffer interface {
	io.Writer
	// LockLine locks the buffer and returns it, for one line to be
	// appended to it.
	LockLine() []byte
	// UnlockLine takes the buffer back, as LockLine returned it with one
	// whole line appended, or none, and unlocks it.
	UnlockLine(b []byte)
}

var _ slog.Handler = (*Handler)(nil)

// NewTextHandler returns a Handler that writes to w with opts (nil: the
// defaults), as slog.NewTextHandler(w, opts) does.
func NewTextHandler(w io.Writer, opts *slog.HandlerOptions) *Handler {
	if lb := lineBuffer(w); lb != nil {
		return newHandler(slog.NewTextHandler(lb, opts), nil, lb, opts, textFormat)
	}
	lw := NewLockedWriter(w)
	return newHandler(slog.NewTextHandler(lw, opts), lw, nil, opts, textFormat)
}

// NewJSONHandler returns a Handler that writes to w with opts (nil: the
// defaults), as slog.NewJSONHandler(w, opts) does.
func NewJSONHandler(w io.Writer, opts *slog.HandlerOptions) *Handler {
	if lb := lineBuffer(w); lb != nil {
		return newHandler(slog.NewJSONHandler(lb, opts), nil, lb, opts, jsonFormat)
	}
	lw := NewLockedWriter(w)
	return newHandler(slog.NewJSONHandler(lw, opts), lw, nil, opts, jsonFormat)
}

func newHandler(slow slog.Handler, w *LockedWriter, lb LineBuffer, opts *slog.HandlerOptions, f format) *Handler {
	quick := opts == nil || opts.ReplaceAttr == nil && !opts.AddSource
	return &Handler{slow: slow, w: w, lb: lb, quick: quick, f: f}
}

// lineBuffer is w if it is a LineBuffer, or a LockedWriter's if it holds
// one (its lock adds nothing: the buffer takes one line at a time), or
// nil.
func lineBuffer(w io.Writer) LineBuffer {
	if lw, ok := w.(*LockedWriter); ok {
		w = lw.w
	}
	lb, _ := w.(LineBuffer)
	return lb
}

// Enabled is slog's handler's.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.slow.Enabled(ctx, l)
}

// WithAttrs is slog's handler's: the handler it returns formats every
// line the general way, writing in turn with h's lines.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return h.slow.WithAttrs(as)
}

// WithGroup is slog's handler's, as WithAttrs.
func (h *Handler) WithGroup(name string) slog.Handler {
	return h.slow.WithGroup(name)
}

// Handle writes r as slog's handler would.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if ok, err := h.HandlePlain(&r); ok {
		return err
	}
	return h.slow.Handle(ctx, r)
}

// HandlePlain writes r as Handle does if r is a record the quick path
// formats (see the package doc), and reports whether it was: if not,
// nothing is written, and r is for Handle, which has slog's handler
// write it. (r by its address: a record is some 300 bytes to copy.)
//
// A record of plain values holds no error, nor anything that gives one:
// a handler that looks for errors to write them otherwise (shout serve's
// names the flags in them) can hand this any record first, and look
// over only the records it declines.
func (h *Handler) HandlePlain(r *slog.Record) (bool, error) {
	if !h.quick {
		return false, nil
	}
	if h.lb != nil {
		b := h.lb.LockLine()
		n := len(b)
		b, ok := h.f.appendLine(b, &h.sec, r)
		if !ok {
			b = b[:n] // declined: nothing appended
		}
		h.lb.UnlockLine(b)
		return ok, nil
	}
	sc := scratches.Get().(*scratch)
	b, ok := h.f.appendLine(sc.b[:0], &sc.sec, r)
	var err error
	if ok {
		_, err = h.w.Write(b)
	}
	if cap(b) <= maxBuf {
		sc.b = b
		scratches.Put(sc)
	}
	return ok, err
}

// format is one of slog's two: text, or JSON if true. (A bool and not
// a table of the keys and marks: a constant's append is a few moves, a
// string field's a call to memmove, which cost the text lines 10%.)
type format bool

const (
	textFormat format = false
	jsonFormat format = true
)

// appendString appends s as the format writes a key or a string value.
// Most are ASCII with nothing to quote or escape (a level, a message, a
// key, an address), which the words' test tells 8 bytes at a time; the
// rest are looked over again a byte at a time.
func (json format) appendString(b []byte, s string) []byte {
	n := len(b)
	if cap(b)-n < len(s)+10 { // room for the quotes, and for a word read past the end
		b = slices.Grow(b, len(s)+10)
	}
	// A string of one word (most keys and values) is looked at here, a
	// longer one by textPlain or jsonPlain.
	if json {
		b = append(append(b, '"'), s...)
		if len(s) == 0 || len(s) <= 8 && jsonFlags(binary.LittleEndian.Uint64(b[n+1:cap(b)]))&tailMask(len(s)) == 0 ||
			len(s) > 8 && jsonPlain(b, n+1) {
			return append(b, '"')
		}
		return appendJSONString(b[:n], s)
	}
	b = append(b, s...)
	if len(s) > 0 && len(s) <= 8 && textFlags(binary.LittleEndian.Uint64(b[n:cap(b)]))&tailMask(len(s)) == 0 ||
		len(s) > 8 && textPlain(b, n) || !needsQuoting(s) {
		return b
	}
	return strconv.AppendQuote(b[:n], s)
}

// textPlain reports whether every byte of b[i:] is ASCII that the text
// format leaves as it is, 8 at a time: a word's last bytes may lie past
// len(b) (b's capacity has room), and their flags are masked off.
func textPlain(b []byte, i int) bool {
	w := b[:cap(b)]
	var bad uint64
	for ; i+8 <= len(b); i += 8 {
		bad |= textFlags(binary.LittleEndian.Uint64(w[i:]))
	}
	if i < len(b) {
		bad |= textFlags(binary.LittleEndian.Uint64(w[i:])) & tailMask(len(b)-i)
	}
	return bad == 0
}

// jsonPlain is textPlain for JSON.
func jsonPlain(b []byte, i int) bool {
	w := b[:cap(b)]
	var bad uint64
	for ; i+8 <= len(b); i += 8 {
		bad |= jsonFlags(binary.LittleEndian.Uint64(w[i:]))
	}
	if i < len(b) {
		bad |= jsonFlags(binary.LittleEndian.Uint64(w[i:])) & tailMask(len(b)-i)
	}
	return bad == 0
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// textFlags has the high bit set of each byte of x (a word of 8, read
// little-endian) that textKind does not call plain: past ASCII, up to ' ',
// '"' or '='. A byte above one so flagged may be flagged too, whatever
// it is: a borrow carries upward, so the lowest flag is exact.
func textFlags(x uint64) uint64 {
	q, eq := x^(ones*'"'), x^(ones*'=')
	return (x | (x-ones*('!'))&^x | (q-ones)&^q | (eq-ones)&^eq) & highs
}

// jsonFlags is textFlags for jsonKind: past ASCII, below ' ', '"' or '\\'.
func jsonFlags(x uint64) uint64 {
	q, bs := x^(ones*'"'), x^(ones*'\\')
	return (x | (x-ones*' ')&^x | (q-ones)&^q | (bs-ones)&^bs) & highs
}

// tailMask keeps the flags of a word's first n bytes, 0 < n <= 8.
func tailMask(n int) uint64 {
	return highs >> ((64 - 8*n) & 63)
}

// appendLine appends r's line, as slog's handler of its format writes
// it; false for a record it leaves to slog: an attribute with an empty
// key or a value that is not plain, or a value appendValue declines.
func (json format) appendLine(b []byte, sec *second, r *slog.Record) ([]byte, bool) {
	sep, assign := byte(' '), byte('=')
	if json {
		b = append(b, '{')
		sep, assign = ',', ':'
	}
	ok := true
	if !r.Time.IsZero() {
		if json {
			b = append(b, `"time":`...)
		} else {
			b = append(b, "time="...)
		}
		if b, ok = json.appendTime(b, sec, r.Time); !ok { // (slog drops the monotonic clock's reading, which no form shows)
			return b, false
		}
		b = append(b, sep)
	}
	if json {
		b = append(b, `"level":`...)
	} else {
		b = append(b, "level="...)
	}
	b = json.appendString(b, r.Level.String())
	if json {
		b = append(b, `,"msg":`...)
	} else {
		b = append(b, " msg="...)
	}
	b = json.appendString(b, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "" {
			ok = false
			return false
		}
		b = append(b, sep)
		b = append(json.appendString(b, a.Key), assign)
		b, ok = json.appendValue(b, sec, a.Value)
		return ok
	})
	if json {
		b = append(b, '}')
	}
	return append(b, '\n'), ok
}

// appendValue appends v as slog's handler of the format does, if it is
// of a plain kind: a string, an integer, a float, a boolean, a duration
// or a time; false for a value it leaves to slog.
func (json format) appendValue(b []byte, sec *second, v slog.Value) ([]byte, bool) {
	switch v.Kind() {
	case slog.KindString:
		return json.appendString(b, v.String()), true
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10), true
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10), true
	case slog.KindFloat64:
		if json {
			return appendJSONFloat(b, v.Float64())
		}
		return strconv.AppendFloat(b, v.Float64(), 'g', -1, 64), true
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool()), true
	case slog.KindDuration:
		if json { // as encoding/json, nanoseconds
			return strconv.AppendInt(b, int64(v.Duration()), 10), true
		}
		return append(b, v.Duration().String()...), true
	case slog.KindTime:
		return json.appendTime(b, sec, v.Time())
	}
	return b, false // an Any (an error), a LogValuer, a group
}

// appendTime appends t as slog's handler of the format does, taking all
// but the fraction of a second from sec while the second and the
// location stay the same: the text format to the millisecond
// ("2006-01-02T15:04:05.000Z07:00"), JSON quoted in RFC3339Nano. False,
// and nothing appended, for a time whose year does not take four digits
// (slog's JSON says an error before it).
func (json format) appendTime(b []byte, sec *second, t time.Time) ([]byte, bool) {
	if !sec.of(t) {
		return b, false
	}
	if !json {
		ms := t.Nanosecond() / int(time.Millisecond)
		b = append(b, sec.text[:fraction]...)
		b = append(b, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
		return append(b, sec.text[fraction+4:sec.n]...), true
	}
	b = append(b, '"')
	b = append(b, sec.text[:fraction-1]...)
	if ns := t.Nanosecond(); ns != 0 { // nine digits less the trailing zeros, as RFC3339Nano
		var d [9]byte
		u := uint32(ns) // (unsigned: a division by 10 is a multiplication and a shift)
		for i := len(d) - 1; i >= 0; i-- {
			d[i] = byte('0' + u%10)
			u /= 10
		}
		n := len(d)
		for d[n-1] == '0' {
			n--
		}
		b = append(append(b, '.'), d[:n]...)
	}
	b = append(b, sec.text[fraction+4:sec.n]...)
	return append(b, '"'), true
}

// second is slog's text of one second of the wall clock in one location,
// "2006-01-02T15:04:05.0001Z07:00": the date and time of day to the
// second, a fraction, which appendTime replaces, and the zone.
type second struct {
	unix int64
	loc  *time.Location
	n    int // the text's length; 0 if none yet
	text [48]byte
}

// fraction is where the fraction of a second begins in second's text.
const fraction = len("2006-01-02T15:04:05.")

// of makes sec the text of t's second, if it is not already; false for
// a time whose year does not take four digits.
func (sec *second) of(t time.Time) bool {
	if sec.n != 0 && sec.unix == t.Unix() && sec.loc == t.Location() {
		return true
	}
	// slog's text formats the time truncated to the millisecond, plus a
	// tenth of one so that RFC3339Nano keeps four digits, and drops the
	// fourth. In one second the rest is the same.
	text := t.Truncate(time.Second).Add(time.Millisecond/10).AppendFormat(sec.text[:0], time.RFC3339Nano)
	if len(text) > len(sec.text) || len(text) < fraction+4 || text[fraction-1] != '.' { // (five digits, or a sign, move it)
		sec.n = 0
		return false
	}
	sec.unix, sec.loc, sec.n = t.Unix(), t.Location(), len(text)
	return true
}

const (
	plainByte  = iota
	quotedByte // one the format quotes or escapes
	wideByte   // part of a character past ASCII
)

// byteKinds is what each byte is to a format whose rule for ASCII is
// quoted.
func byteKinds(quoted func(c byte) bool) (k [256]uint8) {
	for c := range k {
		switch {
		case c >= utf8.RuneSelf:
			k[c] = wideByte
		case quoted(byte(c)):
			k[c] = quotedByte
		}
	}
	return k
}

// maxBuf is the largest buffer kept for the next line: a record far
// longer than a connection's lines (a long error) does not pin its buffer.
const maxBuf = 16 << 10

// scratch is a line's buffer, and the last second it formatted (a
// goroutine that logs finds its own, as sync.Pool keeps one a processor).
type scratch struct {
	b   []byte
	sec second
}

var scratches = sync.Pool{New: func() any { return &scratch{b: make([]byte, 0, 1024)} }}

// LockedWriter is a writer for several handlers at once, one Write at a
// time: a Handler's quick lines and its slog handler's go through one.
type LockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewLockedWriter returns w made safe for several handlers, or w itself
// if it is a LockedWriter already: handlers made on it take turns on its
// lock, and on no lock of their own.
func NewLockedWriter(w io.Writer) *LockedWriter {
	if lw, ok := w.(*LockedWriter); ok {
		return lw
	}
	return &LockedWriter{w: w}
}

// Write writes p to the writer under l's lock.
func (l *LockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
