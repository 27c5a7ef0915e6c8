package textlog

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Handler writes slog.TextHandler's lines, some of them faster (see the
// package doc). Lines it formats and lines slog's handler formats go to
// the writer one Write each, never at once.
type Handler struct {
	text  *slog.TextHandler // everything the quick path does not take
	w     *lockedWriter
	quick bool // the options leave every record to the quick path's form
}

var _ slog.Handler = (*Handler)(nil)

// NewHandler returns a Handler that writes to w with opts (nil: the
// defaults), as slog.NewTextHandler(w, opts) does.
func NewHandler(w io.Writer, opts *slog.HandlerOptions) *Handler {
	lw := &lockedWriter{w: w}
	quick := opts == nil || opts.ReplaceAttr == nil && !opts.AddSource
	return &Handler{text: slog.NewTextHandler(lw, opts), w: lw, quick: quick}
}

// Enabled is slog.TextHandler's.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.text.Enabled(ctx, l)
}

// WithAttrs is slog.TextHandler's: the handler it returns formats every
// line the general way, writing in turn with h's lines.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return h.text.WithAttrs(as)
}

// WithGroup is slog.TextHandler's, as WithAttrs.
func (h *Handler) WithGroup(name string) slog.Handler {
	return h.text.WithGroup(name)
}

// Handle writes r as slog.TextHandler would.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if !h.quick || !plain(r) {
		return h.text.Handle(ctx, r)
	}
	sc := scratches.Get().(*scratch)
	b := sc.b[:0]
	ok := true
	if !r.Time.IsZero() {
		b = append(b, "time="...)
		b, ok = sc.sec.appendTime(b, r.Time.Round(0)) // without the monotonic clock, as slog
	}
	if ok {
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = append(b, "level="...)
		b = appendString(b, r.Level.String())
		b = append(b, " msg="...)
		b = appendString(b, r.Message)
		r.Attrs(func(a slog.Attr) bool {
			b = append(b, ' ')
			b = appendString(b, a.Key)
			b = append(b, '=')
			b, ok = sc.sec.appendValue(b, a.Value)
			return ok
		})
	}
	var err error
	if ok {
		b = append(b, '\n')
		_, err = h.w.Write(b)
	} else { // a time the quick path does not format (a year past 9999)
		err = h.text.Handle(ctx, r)
	}
	if cap(b) <= maxBuf {
		sc.b = b
		scratches.Put(sc)
	}
	return err
}

// plain reports whether every attribute of r is one the quick path
// formats: a non-empty key and a value of a plain kind.
func plain(r slog.Record) bool {
	ok := true
	r.Attrs(func(a slog.Attr) bool {
		switch a.Value.Kind() {
		case slog.KindString, slog.KindInt64, slog.KindUint64, slog.KindFloat64, slog.KindBool, slog.KindDuration, slog.KindTime:
			ok = a.Key != ""
		default:
			ok = false
		}
		return ok
	})
	return ok
}

// appendValue appends v of a plain kind as slog.TextHandler does; false
// for a time it leaves to slog.
func (sec *second) appendValue(b []byte, v slog.Value) ([]byte, bool) {
	switch v.Kind() {
	case slog.KindString:
		return appendString(b, v.String()), true
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10), true
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10), true
	case slog.KindFloat64:
		return strconv.AppendFloat(b, v.Float64(), 'g', -1, 64), true
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool()), true
	case slog.KindDuration:
		return append(b, v.Duration().String()...), true
	default: // slog.KindTime, as plain allows no other
		return sec.appendTime(b, v.Time())
	}
}

// second is slog's text of one second of the wall clock in one location,
// "2006-01-02T15:04:05.0001Z07:00": the date and time of day to the
// second, the fraction, which appendTime replaces, and the zone.
type second struct {
	unix int64
	loc  *time.Location
	n    int // the text's length; 0 if none yet
	text [48]byte
}

// fraction is where the fraction of a second begins in second's text.
const fraction = len("2006-01-02T15:04:05.")

// appendTime appends t to the millisecond, as slog.TextHandler writes a
// time ("2006-01-02T15:04:05.000Z07:00"), taking the rest from sec while
// the second and the location stay the same; false, and nothing
// appended, for a time whose year does not take four digits.
func (sec *second) appendTime(b []byte, t time.Time) ([]byte, bool) {
	if sec.n == 0 || sec.unix != t.Unix() || sec.loc != t.Location() {
		// slog formats the time truncated to the millisecond, plus a
		// tenth of one so that RFC3339Nano keeps four digits, and drops
		// the fourth. In one second the rest is the same.
		text := t.Truncate(time.Second).Add(time.Millisecond/10).AppendFormat(sec.text[:0], time.RFC3339Nano)
		if len(text) > len(sec.text) || len(text) < fraction+4 || text[fraction-1] != '.' { // (five digits, or a sign, move it)
			sec.n = 0
			return b, false
		}
		sec.unix, sec.loc, sec.n = t.Unix(), t.Location(), len(text)
	}
	ms := t.Nanosecond() / int(time.Millisecond)
	b = append(b, sec.text[:fraction]...)
	b = append(b, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	return append(b, sec.text[fraction+4:sec.n]...), true
}

// appendString appends s as slog.TextHandler writes a key or a string:
// as it is, or quoted where it holds a character that would make it hard
// to read back (a space, '=', '"', a control or non-printing character,
// invalid UTF-8), or is empty.
func appendString(b []byte, s string) []byte {
	if needsQuoting(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

// needsQuoting is slog's rule for a text value, a byte looked up in a
// table until one is not ASCII.
func needsQuoting(s string) bool {
	if len(s) == 0 {
		return true
	}
	for i := 0; i < len(s); i++ {
		switch byteKind[s[i]] {
		case plainByte:
			continue
		case quotedByte:
			return true
		}
		for _, r := range s[i:] { // a rune at a time from the first byte past ASCII
			if r == utf8.RuneError || r >= utf8.RuneSelf && (unicode.IsSpace(r) || !unicode.IsPrint(r)) || r < utf8.RuneSelf && byteKind[r] == quotedByte {
				return true
			}
		}
		return false
	}
	return false
}

const (
	plainByte  = iota
	quotedByte // controls, space, '"' and '=' (not a backslash, nor DEL)
	wideByte   // part of a character past ASCII
)

// byteKind is what each byte is to needsQuoting.
var byteKind = func() (k [256]uint8) {
	for c := range k {
		switch {
		case c >= utf8.RuneSelf:
			k[c] = wideByte
		case c <= ' ' || c == '"' || c == '=':
			k[c] = quotedByte
		}
	}
	return k
}()

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

// lockedWriter is the writer of both ways of formatting, one Write at a
// time.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
