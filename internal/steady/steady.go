// Package steady bounds a test's large transfers by their stalls, not
// their length.
package steady

import (
	"net"
	"time"
)

// Conn wraps c so that each Read, and each 64 KiB of a Write, first
// renews c's deadline to stall from now: a large transfer on a busy
// machine (the race detector, other tests) is bounded by how long it
// stalls, not by how long it takes.
func Conn(c net.Conn, stall time.Duration) net.Conn { return steady{c, stall} }

type steady struct {
	net.Conn
	stall time.Duration
}

func (s steady) Read(p []byte) (int, error) {
	s.SetReadDeadline(time.Now().Add(s.stall))
	return s.Conn.Read(p)
}

func (s steady) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		s.SetWriteDeadline(time.Now().Add(s.stall))
		k, err := s.Conn.Write(p[n:min(len(p), n+64<<10)])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
