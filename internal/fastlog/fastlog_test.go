package fastlog

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// pieces are what the random strings are made of: plain text, and every
// kind of character slog's text handler quotes for or its JSON handler
// escapes, or might be thought to (the text handler leaves a backslash
// and DEL; JSON leaves DEL, '<', '>' and '&', and U+FFFD that is valid).
var pieces = []string{"a", "remote", "127.0.0.1:8080", "[::1]:40312", " ", "=", `"`, `\`, "\x7f", "\x00", "\n", "\t",
	"\r", "\b", "\f", "\x1b", "\x1f", "<", ">", "&", "'", "/",
	"é", "哈", "\u00a0", "\u200b", "\u2028", "\u2029", "\u202a", "\ufffd", "\U0001f600", "\u0085",
	"\xff", "\xe5\x93", "\xed\xa0\x80", "\xc0\x80", "\xf4\x90\x80\x80", "\xe2\x80", "%", "eth0", "", "-", "+", ":", "µs"}

func randString(r *rand.Rand) string {
	var sb strings.Builder
	for range r.IntN(5) {
		sb.WriteString(pieces[r.IntN(len(pieces))])
	}
	return sb.String()
}

var zones = []*time.Location{time.UTC, time.Local, time.FixedZone("IST", 5*3600+1800), time.FixedZone("W", -7*3600),
	time.FixedZone("LMT", 561), time.FixedZone("odd", -(2*3600 + 30*60 + 15))}

func randTime(r *rand.Rand, base time.Time) time.Time {
	var t time.Time
	switch r.IntN(8) {
	case 0:
		return time.Time{}
	case 1: // the edges of four-digit years, and past them
		years := []int{0, 1, 9999, 10000, -1, 12345}
		t = time.Date(years[r.IntN(len(years))], time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1e9), zones[r.IntN(len(zones))])
	case 2:
		t = time.Unix(r.Int64N(1<<36)-1<<35, r.Int64N(1e9)).In(zones[r.IntN(len(zones))])
	default: // near base, as a server's lines are: the cached second, and the next
		t = base.Add(time.Duration(r.Int64N(int64(3 * time.Second)))).In(zones[r.IntN(len(zones))])
	}
	// Fractions of a second that end in zeros, which RFC3339Nano drops,
	// and none at all.
	units := []time.Duration{1, 1, 1, 10, time.Microsecond, time.Millisecond, 100 * time.Millisecond, time.Second}
	return t.Add(-time.Duration(t.Nanosecond()) % units[r.IntN(len(units))])
}

func randAttr(r *rand.Rand, base time.Time) slog.Attr {
	k := randString(r)
	if r.IntN(4) > 0 {
		k = []string{"remote", "local", "reason", "duration", "bytes_in", "err"}[r.IntN(6)]
	}
	switch r.IntN(10) {
	case 0:
		return slog.Int64(k, r.Int64()-math.MaxInt64/2)
	case 1:
		return slog.Uint64(k, r.Uint64())
	case 2:
		fs := []float64{0, math.Copysign(0, -1), 1.5, 1e21, 1e-7, math.NaN(), math.Inf(1), math.Inf(-1), r.NormFloat64() * 1e6,
			1e-6, 9.999999e-7, -1e-7, 1e20, 999999999999999999999, 1e6, 0.1, 1e100, 5e-324, math.MaxFloat64, -1e-300, 123456.789e-12,
			math.Float64frombits(r.Uint64())}
		return slog.Float64(k, fs[r.IntN(len(fs))])
	case 3:
		return slog.Bool(k, r.IntN(2) == 0)
	case 4:
		return slog.Duration(k, time.Duration(r.Int64N(1<<40)-1<<39))
	case 5:
		return slog.Time(k, randTime(r, base))
	case 6: // kinds the quick path leaves to slog
		switch r.IntN(4) {
		case 0:
			return slog.Any(k, []int{1, 2})
		case 1:
			return slog.Group(k, slog.String("a", "b c"))
		case 2:
			return slog.Any(k, nil)
		default:
			return slog.Any(k, context.Canceled)
		}
	default:
		return slog.String(k, randString(r))
	}
}

func randRecord(r *rand.Rand, base time.Time) slog.Record {
	levels := []slog.Level{slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelDebug, slog.LevelInfo + 2, -8,
		slog.LevelWarn - 1, slog.LevelError + 4, slog.LevelDebug - 3, math.MaxInt, math.MinInt}
	msgs := []string{"open", "close", "connection rejected", "TLS handshake failed", ""}
	msg := msgs[r.IntN(len(msgs))]
	if r.IntN(4) == 0 {
		msg = randString(r)
	}
	rec := slog.NewRecord(randTime(r, base), levels[r.IntN(len(levels))], msg, 0)
	for range r.IntN(7) {
		rec.AddAttrs(randAttr(r, base))
	}
	return rec
}

// formats are the two of slog's handlers, each with the handler here
// that writes as it does.
var formats = []struct {
	name string
	fast func(io.Writer, *slog.HandlerOptions) *Handler
	slog func(io.Writer, *slog.HandlerOptions) slog.Handler
	line string // how each line begins, with a time
}{
	{"text", NewTextHandler, func(w io.Writer, o *slog.HandlerOptions) slog.Handler { return slog.NewTextHandler(w, o) }, "time="},
	{"json", NewJSONHandler, func(w io.Writer, o *slog.HandlerOptions) slog.Handler { return slog.NewJSONHandler(w, o) }, `{"time":"`},
}

// TestSameAsSlog: every line is byte for byte what slog's handler of the
// format writes, over random records of every kind of value, key, level
// and time, written in turn to both.
func TestSameAsSlog(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			base := time.Now()
			var got, want bytes.Buffer
			var lb lineBuf
			opts := &slog.HandlerOptions{Level: slog.Level(math.MinInt)}
			h, slow := f.fast(&got, opts), f.slog(&want, opts)
			inPlace := f.fast(NewLockedWriter(&lb), opts) // as shout serve makes it, on asynclog's buffer
			if inPlace.lb != &lb {
				t.Fatalf("a handler on a LineBuffer in a LockedWriter: lines not in place")
			}
			for i := range 20000 {
				rec := randRecord(r, base)
				got.Reset()
				want.Reset()
				lb.b = lb.b[:0]
				if err := h.Handle(context.Background(), rec.Clone()); err != nil {
					t.Fatal(err)
				}
				if err := inPlace.Handle(context.Background(), rec.Clone()); err != nil {
					t.Fatal(err)
				}
				if err := slow.Handle(context.Background(), rec); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Bytes(), want.Bytes()) {
					t.Fatalf("record %d:\n got %q\nwant %q", i, got.Bytes(), want.Bytes())
				}
				if !bytes.Equal(lb.b, want.Bytes()) {
					t.Fatalf("record %d, in place:\n got %q\nwant %q", i, lb.b, want.Bytes())
				}
			}
		})
	}
}

// lineBuf is a LineBuffer, as asynclog's buffer is.
type lineBuf struct {
	mu sync.Mutex
	b  []byte
}

func (l *lineBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lineBuf) LockLine() []byte {
	l.mu.Lock()
	return l.b
}

func (l *lineBuf) UnlockLine(b []byte) {
	l.b = b
	l.mu.Unlock()
}

// TestQuickPathTaken: a record of plain values is formatted here, not by
// slog (where TestSameAsSlog would pass whatever this package did), and
// one with a value of another kind, or under options that change the
// form, by slog.
func TestQuickPathTaken(t *testing.T) {
	rec := func(as ...slog.Attr) slog.Record {
		r := slog.NewRecord(time.Now(), slog.LevelInfo, "close", 0)
		r.AddAttrs(as...)
		return r
	}
	plainAttrs := []slog.Attr{slog.String("remote", "127.0.0.1:40312"), slog.String("reason", "eof"), slog.Duration("duration", 137*time.Microsecond),
		slog.Int64("bytes_in", 64), slog.Uint64("n", 1), slog.Float64("f", 0.5), slog.Bool("b", true), slog.Time("t", time.Now())}
	for _, tc := range []struct {
		name       string
		opts       *slog.HandlerOptions
		r          slog.Record
		text, json bool // formatted here, in each format
	}{
		{"plain values", nil, rec(plainAttrs...), true, true},
		{"no attributes", nil, rec(), true, true},
		{"no time", nil, slog.NewRecord(time.Time{}, slog.LevelWarn, "x", 0), true, true},
		{"year 0", nil, rec(slog.Time("t", time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC))), true, true},
		{"a level with an offset", nil, slog.NewRecord(time.Now(), slog.LevelError+2, "x", 0), true, true},
		{"an error", nil, rec(slog.Any("err", context.Canceled)), false, false},
		{"a group", nil, rec(slog.Group("g", slog.Int("a", 1))), false, false},
		{"an empty key", nil, rec(slog.String("", "v")), false, false},
		{"year 10000", nil, rec(slog.Time("t", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))), false, false},
		{"year -1", nil, slog.NewRecord(time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), slog.LevelInfo, "x", 0), false, false},
		{"NaN", nil, rec(slog.Float64("f", math.NaN())), true, false},
		{"infinity", nil, rec(slog.Float64("f", math.Inf(-1))), true, false},
		{"ReplaceAttr", &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return a }}, rec(plainAttrs...), false, false},
		{"AddSource", &slog.HandlerOptions{AddSource: true}, rec(plainAttrs...), false, false},
	} {
		for _, f := range formats {
			t.Run(tc.name+"/"+f.name, func(t *testing.T) {
				var quick, general bytes.Buffer
				h := f.fast(&quick, tc.opts)
				h.slow = f.slog(&general, tc.opts) // slog's lines apart
				if err := h.Handle(context.Background(), tc.r); err != nil {
					t.Fatal(err)
				}
				want := tc.text
				if f.name == "json" {
					want = tc.json
				}
				if want && (quick.Len() == 0 || general.Len() > 0) || !want && (quick.Len() > 0 || general.Len() == 0) {
					t.Errorf("formatted here: %q; by slog: %q; want it formatted here: %v", quick.String(), general.String(), want)
				}
				// HandlePlain takes what Handle formats here, and of
				// the rest writes nothing.
				quick.Reset()
				general.Reset()
				r := tc.r.Clone()
				ok, err := h.HandlePlain(&r)
				if err != nil || ok != want || ok && quick.Len() == 0 || !ok && quick.Len() > 0 || general.Len() > 0 {
					t.Errorf("HandlePlain: %v, %v; wrote %q here, %q by slog; want %v, and only what it takes, here", ok, err, quick.String(), general.String(), want)
				}
				// And so into a LineBuffer in place, after what it holds.
				lb := lineBuf{b: []byte("held\n")}
				h = f.fast(&lb, tc.opts)
				h.slow = f.slog(&general, tc.opts)
				r = tc.r.Clone()
				ok, err = h.HandlePlain(&r)
				if err != nil || ok != want || !bytes.HasPrefix(lb.b, []byte("held\n")) || ok && !bytes.Equal(lb.b[5:], quick.Bytes()) || !ok && len(lb.b) != 5 || general.Len() > 0 {
					t.Errorf("HandlePlain in place: %v, %v; buffer %q, %q by slog; want %v, and %q after what it held", ok, err, lb.b, general.String(), want, quick.String())
				}
			})
		}
	}
}

// TestWithAttrsAndGroupAsSlog: a handler made by WithAttrs or WithGroup
// writes what slog's handler so made does, the attributes and groups
// given before and the record's own.
func TestWithAttrsAndGroupAsSlog(t *testing.T) {
	with := []struct {
		name string
		make func(slog.Handler) slog.Handler
	}{
		{"attrs", func(h slog.Handler) slog.Handler {
			return h.WithAttrs([]slog.Attr{slog.String("listener", "127.0.0.1:8080"), slog.Int("n", 1)})
		}},
		{"group", func(h slog.Handler) slog.Handler { return h.WithGroup("conn") }},
		{"group attrs", func(h slog.Handler) slog.Handler {
			return h.WithGroup("conn").WithAttrs([]slog.Attr{slog.String("a b", "<\u2028>")}).WithGroup("x")
		}},
	}
	r := slog.NewRecord(time.Date(2026, 12, 7, 4, 5, 6, 7, time.UTC), slog.LevelInfo, "open", 0)
	r.AddAttrs(slog.String("remote", "127.0.0.1:40312"), slog.Duration("duration", time.Millisecond))
	for _, f := range formats {
		for _, w := range with {
			t.Run(f.name+"/"+w.name, func(t *testing.T) {
				var got, want bytes.Buffer
				if err := w.make(f.fast(&got, nil)).Handle(context.Background(), r.Clone()); err != nil {
					t.Fatal(err)
				}
				if err := w.make(f.slog(&want, nil)).Handle(context.Background(), r.Clone()); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Bytes(), want.Bytes()) {
					t.Errorf("\n got %q\nwant %q", got.Bytes(), want.Bytes())
				}
			})
		}
	}
}

// TestWithAttrsWritesInTurn: lines of a derived handler (slog's), of the
// quick path, and of another handler made on the same LockedWriter (as
// shout serve's flagged handler is), written at once from many
// goroutines, are whole lines, each one Write.
func TestWithAttrsWritesInTurn(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			var w writes
			lw := NewLockedWriter(&w)
			h := f.fast(lw, nil)
			loggers := []*slog.Logger{
				slog.New(h),
				slog.New(h.WithAttrs([]slog.Attr{slog.String("listener", "127.0.0.1:8080")})),
				slog.New(f.fast(lw, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return a }})),
				slog.New(f.fast(NewLockedWriter(lw), nil)),
			}
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for i := range 200 {
						loggers[g%len(loggers)].Info("open", "remote", "127.0.0.1:1", "i", i)
					}
				})
			}
			wg.Wait()
			if len(w.each) != 1600 {
				t.Fatalf("%d writes, want 1600", len(w.each))
			}
			for _, p := range w.each {
				if bytes.Count(p, []byte("\n")) != 1 || p[len(p)-1] != '\n' || !bytes.HasPrefix(p, []byte(f.line)) {
					t.Fatalf("a write of %q: want one whole line", p)
				}
			}
		})
	}
}

// writes keeps each Write apart, and finds two at once (the race detector
// sees them too): it yields its processor in each, so that another
// goroutine's Write, if nothing holds it back, comes while it lasts.
type writes struct {
	mu   sync.Mutex
	each [][]byte
}

func (w *writes) Write(p []byte) (int, error) {
	if !w.mu.TryLock() {
		panic("two writes at once")
	}
	defer w.mu.Unlock()
	runtime.Gosched()
	w.each = append(w.each, bytes.Clone(p))
	return len(p), nil
}

// FuzzSameAsSlog: one record of a string, a number, a float and a time in
// turn, as slog's handlers write it.
func FuzzSameAsSlog(f *testing.F) {
	f.Add("open", "remote", "127.0.0.1:8080", int64(64), int64(1765069488123456789), 0, 0.5)
	f.Add("", "=", "a b\"c\\", int64(-1), int64(-62135596800000000), 3, 1e21)
	f.Add("哈\u00a0", "\x7f", "\xff\u2028", int64(0), int64(253402300799999999), 5, 1e-7)
	f.Add("<&>\u2029", "\x1f\b", "\xed\xa0\x80\ufffd", int64(100), int64(1765069488120000000), 2, math.Inf(1))
	f.Fuzz(func(t *testing.T, msg, key, s string, n, unixNano int64, zone int, x float64) {
		loc := zones[uint(zone)%uint(len(zones))]
		rec := slog.NewRecord(time.Unix(0, unixNano).In(loc), slog.Level(n), msg, 0)
		if key != "" {
			rec.AddAttrs(slog.String(key, s), slog.Int64(key, n), slog.Duration(s, time.Duration(n)), slog.Float64(s, x),
				slog.Time(key, time.Unix(0, n).In(loc)))
		}
		for _, f := range formats {
			if got, want := both(t, f.fast, f.slog, rec); !bytes.Equal(got, want) {
				t.Fatalf("%s:\n got %q\nwant %q", f.name, got, want)
			}
		}
	})
}

// both is rec as a new Handler writes it, and as slog's handler does.
func both(t *testing.T, fast func(io.Writer, *slog.HandlerOptions) *Handler, slow func(io.Writer, *slog.HandlerOptions) slog.Handler, rec slog.Record) (got, want []byte) {
	t.Helper()
	var g, w bytes.Buffer
	if err := fast(&g, nil).Handle(context.Background(), rec.Clone()); err != nil {
		t.Fatal(err)
	}
	if err := slow(&w, nil).Handle(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return g.Bytes(), w.Bytes()
}

// TestEveryASCIICharacter: a key and a value of each ASCII character,
// alone and amid text, as slog's handlers write them.
func TestEveryASCIICharacter(t *testing.T) {
	at := time.Date(2026, 12, 7, 1, 2, 3, 4e6, time.UTC)
	for _, f := range formats {
		for c := range 128 {
			for _, s := range []string{string(rune(c)), "a" + string(rune(c)) + "b"} {
				rec := slog.NewRecord(at, slog.LevelInfo, s, 0)
				rec.AddAttrs(slog.String(s, s))
				if got, want := both(t, f.fast, f.slog, rec); !bytes.Equal(got, want) {
					t.Errorf("%s %q:\n got %q\nwant %q", f.name, s, got, want)
				}
			}
		}
	}
}

// TestLongLineBufferNotKept: a line longer than maxBuf (a long error) is
// written from a buffer that is not kept for the next line, where each
// processor's pooled scratch would hold one that size for as long as the
// pool keeps it. (The pool hands a goroutine what it put last, most
// often; a kept buffer is seen within a few lines.)
func TestLongLineBufferNotKept(t *testing.T) {
	for _, f := range formats {
		h := f.fast(io.Discard, nil)
		r := slog.NewRecord(time.Now(), slog.LevelInfo, strings.Repeat("x", 4*maxBuf), 0)
		for range 10 {
			if err := h.Handle(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			sc := scratches.Get().(*scratch)
			kept := cap(sc.b)
			scratches.Put(sc)
			if kept > maxBuf {
				t.Fatalf("%s: a buffer of %d bytes kept after a line of %d, want at most %d", f.name, kept, 4*maxBuf, maxBuf)
			}
		}
	}
}

// TestEnabledAsSlog: a Handler takes the levels slog's handler with the
// same options takes, the default Info among them: shout serve without
// -v prints no debug line. (Handle writes whatever it is given, as
// slog's does: the level is kept out by Enabled alone.)
func TestEnabledAsSlog(t *testing.T) {
	var lv slog.LevelVar
	lv.Set(slog.LevelError + 1)
	for _, opts := range []*slog.HandlerOptions{nil, {}, {Level: slog.LevelDebug}, {Level: slog.LevelWarn}, {Level: &lv}} {
		for _, f := range formats {
			h, s := f.fast(io.Discard, opts), f.slog(io.Discard, opts)
			for l := slog.LevelDebug - 4; l <= slog.LevelError+4; l++ {
				if got, want := h.Enabled(context.Background(), l), s.Enabled(context.Background(), l); got != want {
					t.Errorf("%s, options %+v: level %v enabled: %v, slog's %v", f.name, opts, l, got, want)
				}
			}
		}
	}
}

// TestNewLockedWriterKeepsOne: a handler made on a LockedWriter writes
// under its lock alone, not under one of its own around it as well.
func TestNewLockedWriterKeepsOne(t *testing.T) {
	lw := NewLockedWriter(io.Discard)
	if got := NewLockedWriter(lw); got != lw {
		t.Errorf("NewLockedWriter of a LockedWriter is a new one, %p around %p", got, lw)
	}
	for _, f := range formats {
		if h := f.fast(lw, nil); h.w != lw {
			t.Errorf("%s: a handler made on a LockedWriter writes through %p, not it (%p)", f.name, h.w, lw)
		}
	}
}

// TestPlainLinesAllocateNothing: a line of plain values costs no
// allocation once its buffer has grown to it, a connection's lines and
// one past the first buffer's size (a long error, up to maxBuf).
func TestPlainLinesAllocateNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops sync.Pool items")
	}
	at := time.Date(2026, 12, 7, 4, 5, 6, 789, time.UTC)
	closed := slog.NewRecord(at, slog.LevelInfo, "close", 0)
	closed.AddAttrs(slog.String("remote", "127.0.0.1:40312"), slog.String("reason", "eof"), slog.Duration("duration", time.Millisecond),
		slog.Int64("bytes_in", 64), slog.Uint64("n", 1), slog.Float64("f", 0.5), slog.Bool("b", true), slog.Time("t", at))
	long := slog.NewRecord(at, slog.LevelWarn, "read failed", 0)
	long.AddAttrs(slog.String("reason", strings.Repeat("too long ", 500)))
	for _, f := range formats {
		h := f.fast(io.Discard, nil)
		for _, r := range []slog.Record{closed, long} {
			if a := testing.AllocsPerRun(100, func() { h.Handle(context.Background(), r) }); a != 0 {
				t.Errorf("%s: the %q line: %v allocations, want 0", f.name, r.Message, a)
			}
		}
	}
}

// TestEveryByteEveryPlace: each byte, and characters past ASCII, at each
// place of strings 1 to 17 bytes long, as a key and a value, as slog's
// handlers write them: appendPlain looks at 8 bytes at a time, the last
// word's bytes past the string masked off, so a byte is judged by where
// it falls in its word as well as by what it is.
func TestEveryByteEveryPlace(t *testing.T) {
	at := time.Date(2026, 12, 7, 1, 2, 3, 4e6, time.UTC)
	var odd []string
	for c := range 256 {
		odd = append(odd, string([]byte{byte(c)}))
	}
	odd = append(odd, "é", "\u00a0", "\u2028", "\ufffd")
	for _, f := range formats {
		failed := 0
		for n := 1; n <= 17; n++ {
			for i := range n {
				for _, c := range odd {
					if i+len(c) > n {
						continue
					}
					s := strings.Repeat("a", i) + c + strings.Repeat("b", n-i-len(c))
					rec := slog.NewRecord(at, slog.LevelInfo, "m", 0)
					rec.AddAttrs(slog.String(s, s))
					if got, want := both(t, f.fast, f.slog, rec); !bytes.Equal(got, want) && failed < 10 {
						failed++
						t.Errorf("%s %q:\n got %q\nwant %q", f.name, s, got, want)
					}
				}
			}
		}
	}
}

// BenchmarkConnLines: a churned connection's two lines, open and close,
// as shout serve logs them.
func BenchmarkConnLines(b *testing.B) {
	at := time.Date(2026, 12, 7, 4, 5, 6, 789e6, time.UTC)
	open := slog.NewRecord(at, slog.LevelInfo, "open", 0)
	open.AddAttrs(slog.String("remote", "127.0.0.1:40312"), slog.String("local", "127.0.0.1:47555"))
	closed := slog.NewRecord(at, slog.LevelInfo, "close", 0)
	closed.AddAttrs(slog.String("remote", "127.0.0.1:40312"), slog.String("reason", "eof"), slog.Duration("duration", 6230*time.Microsecond),
		slog.Int64("bytes_in", 64), slog.Int64("bytes_out", 64))
	for _, f := range formats {
		b.Run(f.name, func(b *testing.B) {
			h := f.fast(io.Discard, nil)
			ctx := context.Background()
			for b.Loop() {
				h.Handle(ctx, open)
				h.Handle(ctx, closed)
			}
		})
	}
}

// TestEveryLengthAtTheBufferEnd: short strings after a padding of each
// length up to past twice the pooled buffer's first size, so that one
// of them ends at each place near the end of the buffer's capacity,
// where appendString reads a word of 8 bytes from where the string
// begins: as slog's handlers write them, and read only within the
// buffer.
func TestEveryLengthAtTheBufferEnd(t *testing.T) {
	at := time.Date(2026, 12, 7, 1, 2, 3, 4e6, time.UTC)
	for _, f := range formats {
		for k := range 2100 {
			rec := slog.NewRecord(at, slog.LevelInfo, "m", 0)
			rec.AddAttrs(slog.String("pad", strings.Repeat("a", k)), slog.String("k", "v"),
				slog.String("kk", "vvvvvvvvv"))
			if got, want := both(t, f.fast, f.slog, rec); !bytes.Equal(got, want) {
				t.Fatalf("%s, padding %d:\n got %q\nwant %q", f.name, k, got, want)
			}
		}
	}
}
