package certs

import (
	"context"
	"time"

	"shout/internal/named"
)

// SetPEMWait sets how long ReadPEM waits on a pipe, for a test, and
// returns what puts it back.
func SetPEMWait(d time.Duration) (restore func()) {
	old := pemWait
	pemWait = d
	return func() { pemWait = old }
}

// ReadPEM is ReadPEMContext without a context, for tests: its waits end
// only when they time out.
func ReadPEM(flag named.Setting, path string) ([]byte, error) {
	return ReadPEMContext(context.Background(), flag, path)
}
