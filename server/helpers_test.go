package server_test

import (
	"log/slog"
	"net"
	"testing"

	"shout/internal/shouttest"
	"shout/server"
)

func slogJSON(l *shouttest.Log) *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type slogLogger = slog.Logger

var slogDiscard = slog.New(slog.DiscardHandler)

// engine is the driver a Server chooses for a TCP listener here.
func engine(t *testing.T) server.Engine {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e, err := new(server.Server).EngineFor(ln)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func discard() *slogLogger { return slogDiscard }
