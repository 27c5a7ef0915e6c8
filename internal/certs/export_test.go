package certs

import "time"

// SetPEMWait sets how long ReadPEM waits on a pipe, for a test, and
// returns what puts it back.
func SetPEMWait(d time.Duration) (restore func()) {
	old := pemWait
	pemWait = d
	return func() { pemWait = old }
}
