//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
	"time"
)

// stopBySignal ends shout at once as sig does by default, so that a shell
// sees a program stopped by Ctrl-C (and ends its loop too). If sig was
// ignored when shout started (a background job in a script), it stays
// ignored once shout stops catching it: then shout exits with 128 + sig,
// as a shell reports a program a signal stopped. SIGQUIT ends it with
// 131 alone: Go's handler would write every goroutine's stack to stderr
// and exit 2, a usage error's status.
func stopBySignal(sig syscall.Signal) {
	if sig == syscall.SIGQUIT {
		os.Exit(128 + int(sig))
	}
	signal.Reset(sig)
	syscall.Kill(os.Getpid(), sig)
	// Go's handler, no longer told to pass sig on, ends the process with
	// it; but on its own thread, so not before Kill returns.
	time.Sleep(time.Second)
	os.Exit(128 + int(sig))
}
