//go:build !unix

package certs

import (
	"context"
	"io"
	"os"
)

// openPEM opens path to read. (Named pipes that wait for a writer are
// Unix's.)
func openPEM(_ context.Context, _ *waiter, path string) (*os.File, error) { return os.Open(path) }

// readPEMFile reads f to its end, at most MaxPEM+1 bytes, telling w of
// a wait for a file that is not a regular one (a pipe's writer).
func readPEMFile(_ context.Context, w *waiter, f *os.File, regular, _ bool) ([]byte, error) {
	if !regular {
		w.waiting("not written to its end yet", 0) // no deadline here
	}
	return io.ReadAll(io.LimitReader(f, MaxPEM+1))
}
