package textlog

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// pieces are what the random strings are made of: plain text, and every
// kind of character slog's text handler quotes for, or might be thought
// to (a backslash and DEL it does not).
var pieces = []string{"a", "remote", "127.0.0.1:8080", "[::1]:40312", " ", "=", `"`, `\`, "\x7f", "\x00", "\n", "\t",
	"é", "哈", "\u00a0", "\u200b", "\u2028", "\xff", "\xe5\x93", "%", "eth0", "", "-", "+", ":", "µs"}

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
	switch r.IntN(8) {
	case 0:
		return time.Time{}
	case 1: // the edges of four-digit years, and past them
		years := []int{0, 1, 9999, 10000, -1, 12345}
		return time.Date(years[r.IntN(len(years))], time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1e9), zones[r.IntN(len(zones))])
	case 2:
		return time.Unix(r.Int64N(1<<36)-1<<35, r.Int64N(1e9)).In(zones[r.IntN(len(zones))])
	default: // near base, as a server's lines are: the cached second, and the next
		return base.Add(time.Duration(r.Int64N(int64(3 * time.Second)))).In(zones[r.IntN(len(zones))])
	}
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
		fs := []float64{0, math.Copysign(0, -1), 1.5, 1e21, 1e-7, math.NaN(), math.Inf(1), math.Inf(-1), r.NormFloat64() * 1e6}
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
	levels := []slog.Level{slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelDebug, slog.LevelInfo + 2, -8}
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

// TestSameAsSlog: every line is byte for byte what slog.TextHandler
// writes, over random records of every kind of value, key and time,
// written in turn to both.
func TestSameAsSlog(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Now()
	var got, want bytes.Buffer
	h := NewHandler(&got, &slog.HandlerOptions{Level: slog.LevelDebug - 8})
	text := slog.NewTextHandler(&want, &slog.HandlerOptions{Level: slog.LevelDebug - 8})
	for i := range 20000 {
		rec := randRecord(r, base)
		got.Reset()
		want.Reset()
		if err := h.Handle(context.Background(), rec.Clone()); err != nil {
			t.Fatal(err)
		}
		if err := text.Handle(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("record %d:\n got %q\nwant %q", i, got.Bytes(), want.Bytes())
		}
	}
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
		name  string
		opts  *slog.HandlerOptions
		r     slog.Record
		quick bool
	}{
		{"plain values", nil, rec(plainAttrs...), true},
		{"no attributes", nil, rec(), true},
		{"no time", nil, slog.NewRecord(time.Time{}, slog.LevelWarn, "x", 0), true},
		{"an error", nil, rec(slog.Any("err", context.Canceled)), false},
		{"a group", nil, rec(slog.Group("g", slog.Int("a", 1))), false},
		{"an empty key", nil, rec(slog.String("", "v")), false},
		{"year 10000", nil, rec(slog.Time("t", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))), false},
		{"ReplaceAttr", &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return a }}, rec(plainAttrs...), false},
		{"AddSource", &slog.HandlerOptions{AddSource: true}, rec(plainAttrs...), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var quick, general bytes.Buffer
			h := NewHandler(&quick, tc.opts)
			h.text = slog.NewTextHandler(&general, tc.opts) // slog's lines apart
			if err := h.Handle(context.Background(), tc.r); err != nil {
				t.Fatal(err)
			}
			if tc.quick && (quick.Len() == 0 || general.Len() > 0) || !tc.quick && (quick.Len() > 0 || general.Len() == 0) {
				t.Errorf("formatted here: %q; by slog: %q; want it formatted here: %v", quick.String(), general.String(), tc.quick)
			}
		})
	}
}

// TestWithAttrsWritesInTurn: lines of a derived handler (slog's) and of
// the quick path, written at once from many goroutines, are whole lines,
// each one Write.
func TestWithAttrsWritesInTurn(t *testing.T) {
	var w writes
	h := NewHandler(&w, nil)
	derived := slog.New(h.WithAttrs([]slog.Attr{slog.String("listener", "127.0.0.1:8080")}))
	quick := slog.New(h)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if g%2 == 0 {
					quick.Info("open", "remote", "127.0.0.1:1", "i", i)
				} else {
					derived.Info("served", "i", i)
				}
			}
		})
	}
	wg.Wait()
	if len(w.each) != 1600 {
		t.Fatalf("%d writes, want 1600", len(w.each))
	}
	for _, p := range w.each {
		if bytes.Count(p, []byte("\n")) != 1 || p[len(p)-1] != '\n' || !bytes.HasPrefix(p, []byte("time=")) {
			t.Fatalf("a write of %q: want one whole line", p)
		}
	}
}

// writes keeps each Write apart, and finds two at once (the race detector
// sees them too).
type writes struct {
	mu   sync.Mutex
	each [][]byte
}

func (w *writes) Write(p []byte) (int, error) {
	if !w.mu.TryLock() {
		panic("two writes at once")
	}
	defer w.mu.Unlock()
	w.each = append(w.each, bytes.Clone(p))
	return len(p), nil
}

// FuzzSameAsSlog: one record of a string, a number and a time in turn, as
// slog.TextHandler writes it.
func FuzzSameAsSlog(f *testing.F) {
	f.Add("open", "remote", "127.0.0.1:8080", int64(64), int64(1765069488123456789), 0)
	f.Add("", "=", "a b\"c\\", int64(-1), int64(-62135596800000000), 3)
	f.Add("哈\u00a0", "\x7f", "\xff\u2028", int64(0), int64(253402300799999999), 5)
	f.Fuzz(func(t *testing.T, msg, key, s string, n, unixNano int64, zone int) {
		loc := zones[uint(zone)%uint(len(zones))]
		rec := slog.NewRecord(time.Unix(0, unixNano).In(loc), slog.LevelInfo, msg, 0)
		if key != "" {
			rec.AddAttrs(slog.String(key, s), slog.Int64(key, n), slog.Duration(s, time.Duration(n)), slog.Time(key, time.Unix(0, n).In(loc)))
		}
		if got, want := both(t, rec); !bytes.Equal(got, want) {
			t.Fatalf("\n got %q\nwant %q", got, want)
		}
	})
}

// both is rec as a new Handler writes it, and as slog.TextHandler does.
func both(t *testing.T, rec slog.Record) (got, want []byte) {
	t.Helper()
	var g, w bytes.Buffer
	if err := NewHandler(&g, nil).Handle(context.Background(), rec.Clone()); err != nil {
		t.Fatal(err)
	}
	if err := slog.NewTextHandler(&w, nil).Handle(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return g.Bytes(), w.Bytes()
}

// TestEveryASCIICharacter: a key and a value of each ASCII character,
// alone and amid text, as slog.TextHandler writes them.
func TestEveryASCIICharacter(t *testing.T) {
	at := time.Date(2026, 12, 7, 1, 2, 3, 4e6, time.UTC)
	for c := range 128 {
		for _, s := range []string{string(rune(c)), "a" + string(rune(c)) + "b"} {
			rec := slog.NewRecord(at, slog.LevelInfo, s, 0)
			rec.AddAttrs(slog.String(s, s))
			if got, want := both(t, rec); !bytes.Equal(got, want) {
				t.Errorf("%q:\n got %q\nwant %q", s, got, want)
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
	h := NewHandler(io.Discard, nil)
	r := slog.NewRecord(time.Now(), slog.LevelInfo, strings.Repeat("x", 4*maxBuf), 0)
	for range 10 {
		if err := h.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		sc := scratches.Get().(*scratch)
		kept := cap(sc.b)
		scratches.Put(sc)
		if kept > maxBuf {
			t.Fatalf("a buffer of %d bytes kept after a line of %d, want at most %d", kept, 4*maxBuf, maxBuf)
		}
	}
}
