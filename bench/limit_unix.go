//go:build unix

package bench

import (
	"syscall"

	"shout/internal/named"
)

// checkFileLimit raises the open-file soft limit to the hard limit (Go
// does so at start on most systems; this makes sure) and says clearly if
// conns connections (what: "connections", or over UDP "sockets"), and
// extra descriptors the driver needs, cannot fit under it.
func checkFileLimit(conns, extra int, what string) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if need := uint64(conns) + uint64(extra) + 32; need > uint64(lim.Cur) {
		return named.Errorf("%d %s need about %d open files, but the limit is %d (hard limit %d); raise it with ulimit -n or use fewer %s", conns, what, need, lim.Cur, lim.Max, optConns)
	}
	return nil
}
