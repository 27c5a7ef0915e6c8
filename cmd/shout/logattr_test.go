package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"shout/internal/fastlog"
	"shout/server"
)

// connLines are records as the server's log observer makes a
// connection's open and close lines: every kind of value they carry.
func connLines() []slog.Record {
	at := time.Date(2026, 12, 6, 16, 35, 55, 123456789, time.UTC)
	open := slog.NewRecord(at, slog.LevelInfo, "open", 0)
	open.AddAttrs(slog.String("remote", "127.0.0.7:40312"), slog.String("local", "127.0.0.1:8080"))
	closed := slog.NewRecord(at, slog.LevelInfo, "close", 0)
	closed.AddAttrs(slog.String("remote", "127.0.0.7:40312"), slog.String("reason", "client closed"),
		slog.Duration("duration", 1234*time.Microsecond), slog.Int64("bytes_in", 1<<20), slog.Int64("bytes_out", 1<<20))
	return []slog.Record{open, closed}
}

// A connection's open and close lines cost serve's log handler no
// allocation: its ReplaceAttr (flagAttr), which slog called for every
// attribute, boxed each one's value to look for an error, nine
// allocations a connection at churn, and slog printed the level it then
// got as an Any through an allocating MarshalText.
func TestServeLogLinesAllocateNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops sync.Pool items, and slog's buffers come from one")
	}
	for _, format := range []string{"text", "json"} {
		h := (&serveCmd{LogFormat: format}).logHandler(io.Discard)
		for _, r := range connLines() {
			if a := testing.AllocsPerRun(100, func() { h.Handle(context.Background(), r) }); a != 0 {
				t.Errorf("%s: the %q line: %v allocations, want 0", format, r.Message, a)
			}
		}
	}
}

// The lines without an error go through fastlog in both formats, which
// writes slog's bytes at a fraction of the cost: --log-format json went
// through slog.JSONHandler, a connection's two lines twice the
// instructions of fastlog's (BENCHMARKS.md, stop 55).
func TestServeLogsThroughFastlog(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		h := (&serveCmd{LogFormat: format}).logHandler(io.Discard).(*flagHandler)
		if _, ok := h.plain.(*fastlog.Handler); !ok {
			t.Errorf("%s: serve's lines without an error go through a %T, want a *fastlog.Handler", format, h.plain)
		}
	}
}

// serve's log takes debug lines (each message, under -v) only under -v,
// in both formats, and through a handler WithAttrs or WithGroup made:
// nothing else says so (a handler that took every level passed every
// other test).
func TestServeLogDebugOnlyVerbose(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		for _, verbose := range []bool{false, true} {
			var out bytes.Buffer
			h := (&serveCmd{LogFormat: format, Verbose: verbose}).logHandler(&out)
			for _, log := range []*slog.Logger{slog.New(h), slog.New(h.WithAttrs([]slog.Attr{slog.String("listener", "x")})), slog.New(h.WithGroup("g"))} {
				out.Reset()
				log.Debug("message", "data", "x")
				log.Info("open")
				want := 1
				if verbose {
					want = 2
				}
				if lines := strings.Count(out.String(), "\n"); lines != want {
					t.Errorf("%s, -v %v: %d lines of a debug and an info one, want %d:\n%s", format, verbose, lines, want, out.String())
				}
			}
		}
	}
}

// serve's handler changes no line it does not name a flag in: it prints
// the connection lines, and a line at each level (one with Any values,
// which flagAttr sees), as slog's handler without a ReplaceAttr does.
func TestServeLogLinesAsSlogPrintsThem(t *testing.T) {
	at := time.Date(2026, 12, 6, 16, 35, 55, 0, time.UTC)
	recs := connLines()
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelInfo + 2, slog.LevelError + 4} {
		r := slog.NewRecord(at, l, "a line", 0)
		r.AddAttrs(slog.Any("level", l), slog.Group("g", slog.Any("level", l)))
		recs = append(recs, r)
	}
	for _, format := range []string{"text", "json"} {
		var got, want bytes.Buffer
		h := (&serveCmd{LogFormat: format, Verbose: true}).logHandler(&got)
		opts := &slog.HandlerOptions{Level: slog.LevelDebug}
		plain := slog.Handler(slog.NewTextHandler(&want, opts))
		if format == "json" {
			plain = slog.NewJSONHandler(&want, opts)
		}
		for _, r := range recs {
			if err := h.Handle(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			plain.Handle(context.Background(), r)
		}
		if got.String() != want.String() {
			t.Errorf("%s: serve's handler printed\n%s\nslog's without ReplaceAttr\n%s", format, got.String(), want.String())
		}
	}
}

// A line that carries an error names its settings by their flags however
// the error comes: as an attribute, in a group, from a LogValuer, or from
// WithAttrs (a line of strings alone then too); a line without one goes
// to the handler without a ReplaceAttr, which prints it alike.
func TestServeLogNamesFlagsInEveryLineWithAnError(t *testing.T) {
	err := fmt.Errorf("rejected: %w", server.ErrMaxConns)
	at := time.Date(2026, 12, 6, 16, 35, 55, 0, time.UTC)
	line := func(attrs ...slog.Attr) slog.Record {
		r := slog.NewRecord(at, slog.LevelWarn, "connection rejected", 0)
		r.AddAttrs(attrs...)
		return r
	}
	for _, format := range []string{"text", "json"} {
		for _, c := range []struct {
			name string
			h    func(slog.Handler) slog.Handler
			r    slog.Record
		}{
			{"as an attribute", nil, line(slog.String("remote", "127.0.0.7:40312"), slog.Any("why", err))},
			{"in a group", nil, line(slog.Group("g", slog.Int("n", 1), slog.Group("h", slog.Any("why", err))))},
			{"from a LogValuer", nil, line(slog.Any("why", errValuer{err}))},
			{"from WithAttrs", func(h slog.Handler) slog.Handler { return h.WithAttrs([]slog.Attr{slog.Any("why", err)}) }, line(slog.String("remote", "127.0.0.7:40312"))},
			{"from WithAttrs in a group", func(h slog.Handler) slog.Handler {
				return h.WithGroup("g").WithAttrs([]slog.Attr{slog.Any("why", err)}).WithGroup("h")
			}, line(slog.Int("n", 1))},
		} {
			var out bytes.Buffer
			h := (&serveCmd{LogFormat: format}).logHandler(&out)
			if c.h != nil {
				h = c.h(h)
			}
			if err := h.Handle(context.Background(), c.r); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); !strings.Contains(got, "(--max-conns)") || strings.Contains(got, "MaxConns") {
				t.Errorf("%s, the error %s: the line does not name --max-conns:\n%s", format, c.name, got)
			}
		}
	}
}

// errValuer is a LogValuer that gives an error.
type errValuer struct{ err error }

func (e errValuer) LogValue() slog.Value { return slog.AnyValue(e.err) }
