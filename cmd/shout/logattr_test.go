package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
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
// allocation: its ReplaceAttr (flagAttr), which slog calls for every
// attribute, once boxed each one's value to look for an error, nine
// allocations a connection at churn, and slog printed the level it then
// gets as an Any through an allocating MarshalText.
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

// flagAttr changes no line it does not name a flag in: serve's handler
// prints the connection lines, and a line at each level, as slog's
// handler without a ReplaceAttr does.
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
