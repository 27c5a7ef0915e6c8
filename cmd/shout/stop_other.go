//go:build !unix

package main

import (
	"os"
	"syscall"
)

// stopBySignal ends shout at once with 128 + sig, as a shell reports a
// program a signal stopped.
func stopBySignal(sig syscall.Signal) {
	os.Exit(128 + int(sig))
}
