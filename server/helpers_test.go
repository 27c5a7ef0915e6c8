package server_test

import (
	"log/slog"

	"shout/internal/shouttest"
)

func slogJSON(l *shouttest.Log) *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type slogLogger = slog.Logger

var slogDiscard = slog.New(slog.DiscardHandler)

func discard() *slogLogger { return slogDiscard }
