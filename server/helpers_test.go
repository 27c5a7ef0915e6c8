package server_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"shout/internal/shouttest"
	"shout/server"
)

func slogJSON(l *shouttest.Log) *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type slogLogger = slog.Logger

var slogDiscard = slog.New(slog.DiscardHandler)

func discard() *slogLogger { return slogDiscard }

// shutdown begins srv's graceful stop, bounded, and returns the channel
// its error comes on.
func shutdown(t *testing.T, srv *server.Server) <-chan error {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	t.Cleanup(cancel)
	return shutdownCtx(ctx, srv)
}

// shutdownCtx begins srv's graceful stop with ctx, for a test that ends
// the context itself, gives it longer than bound, or none (Background,
// as shout serve --shutdown-timeout 0), and returns the channel its
// error comes on.
func shutdownCtx(ctx context.Context, srv *server.Server) <-chan error {
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Shutdown(ctx) }()
	return stopped
}

// shutdownReturned checks that the Shutdown whose error comes on stopped
// (see shutdown) returned, without error.
func shutdownReturned(t *testing.T, stopped <-chan error) {
	t.Helper()
	if err := shutdownResult(t, stopped); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// shutdownResult waits for the Shutdown whose error comes on stopped (see
// shutdown) to return, and returns its error. It fails t if Shutdown has
// not returned within 2 bounds: shutdown's context ends after one.
func shutdownResult(t *testing.T, stopped <-chan error) error {
	t.Helper()
	select {
	case err := <-stopped:
		return err
	case <-time.After(2 * bound):
		t.Fatalf("Shutdown did not return within %v", 2*bound)
		return nil
	}
}
