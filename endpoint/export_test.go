package endpoint

import (
	"testing"
	"time"
)

// SetUntrustedPeek makes the listeners t makes wait d, not 200 ms, for a
// source not trusted to send a PROXY header to show whether it begins
// with one: a test that sends a header expects it seen, and its client's
// write may come late on a busy machine.
func SetUntrustedPeek(t testing.TB, d time.Duration) {
	old := untrustedPeek
	untrustedPeek = d
	t.Cleanup(func() { untrustedPeek = old })
}

// UnsupportedVersions is unsupportedVersions, of err's words.
func UnsupportedVersions(err error) string { return unsupportedVersions(err) }
