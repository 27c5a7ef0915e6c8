//go:build unix

package client

import (
	"os"
	"syscall"
)

// lockHistory takes an exclusive lock on the history file f, so that two
// shout connects leaving at once do not write over each other's lines,
// and returns what releases it. If it cannot, it goes on unlocked.
func lockHistory(f *os.File) (unlock func()) {
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX) != nil {
		return func() {}
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
}
