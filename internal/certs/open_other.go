//go:build !unix

package certs

import (
	"context"
	"io"
	"os"
)

// openPEM opens path to read. (Named pipes that wait for a writer are
// Unix's.)
func openPEM(_ context.Context, path string) (*os.File, error) { return os.Open(path) }

// readPEMFile reads f to its end, at most MaxPEM+1 bytes.
func readPEMFile(_ context.Context, f *os.File, _, _ bool) ([]byte, error) {
	return io.ReadAll(io.LimitReader(f, MaxPEM+1))
}
