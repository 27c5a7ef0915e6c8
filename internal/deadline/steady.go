package deadline

import (
	"net"
	"time"
)

// Steady wraps c so that each Read, and each 64 KiB of a Write, first
// moves c's deadline to stall from now (with Refresh): a large transfer
// on a busy machine (the race detector, other tests) is bounded by how
// long it stalls, not by how long it takes. For tests.
func Steady(c net.Conn, stall time.Duration) net.Conn { return &steady{Conn: c, stall: stall} }

type steady struct {
	net.Conn
	stall          time.Duration
	readBy, sendBy time.Time // each side's deadline, for Refresh; one goroutine each
}

func (s *steady) Read(p []byte) (int, error) {
	Refresh(&s.readBy, s.stall, s.SetReadDeadline)
	return s.Conn.Read(p)
}

func (s *steady) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		Refresh(&s.sendBy, s.stall, s.SetWriteDeadline)
		k, err := s.Conn.Write(p[n:min(len(p), n+64<<10)])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
