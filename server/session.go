package server

import (
	"errors"

	"golang.org/x/text/transform"
)

// maxCarry bounds the bytes a session holds back between reads: an
// incomplete character is at most 3, and a look-ahead tailoring (x/text's
// Greek) holds a letter and at most 30 combining marks. A Transformer
// that holds back more has its held bytes answered as they are.
const maxCarry = 256

// errNoProgress reports a Transformer that makes no progress even with
// room for four reads' worth of reply.
var errNoProgress = errors.New("server: transformer made no progress")

// session is what one stream connection is, whatever moves its bytes:
// the bytes of an incomplete character carried from one read to the
// next, and what an observer learns (counts, times, why it ended). A
// driver reads, puts the carried bytes in front of what it read (see
// carried), and hands both to feed with the server's transformer; it
// writes what feed returns. The session never touches a socket.
//
// An idle connection is mostly its session (BENCHMARKS.md, stop 59):
// the transformer is the server's, the same for every connection, so
// the drivers pass it rather than each session keeping it.
type session struct {
	info ConnInfo
	// big holds a carry longer than small, allocated for the first one:
	// an incomplete character is at most 3 bytes, a look-ahead tailoring
	// holds more (see maxCarry).
	big   *[maxCarry]byte
	small [8]byte
	held  uint16 // the bytes carried from the last feed: in small if they fit
	// head holds a bit for each of proxyStarts that the bytes read so
	// far (BytesIn of them) may still be the start of; 0 once they are
	// one, or none.
	head uint8
}

func (s *session) init() {
	s.head = 1<<len(proxyStarts) - 1
}

// carry is the bytes held from the last feed: an incomplete character.
func (s *session) carry() []byte {
	if int(s.held) <= len(s.small) {
		return s.small[:s.held]
	}
	return s.big[:s.held]
}

// proxyStarts are how a PROXY protocol header begins, as the endpoint
// package's listeners that read one tell it from data: version 1 with
// each of its protocols, and version 2's signature. A line of text that
// merely begins with the word PROXY is not one.
var proxyStarts = [...]string{"PROXY TCP4 ", "PROXY TCP6 ", "PROXY UNKNOWN", "\r\n\r\n\x00\r\nQUIT\n"}

// proxyFirst marks the bytes that one of proxyStarts begins with: data
// that begins with none of them is no header, and lookHead says so
// without comparing it with each (about 250 user-space instructions a
// churned connection, BENCHMARKS.md, stop 57).
var proxyFirst = func() (first [256]bool) {
	for _, h := range proxyStarts {
		first[h[0]] = true
	}
	return first
}()

// read counts p, the bytes a read brought, and returns the version of
// the PROXY protocol header (1 or 2) that the connection's data began
// with, once p completes its start, and 0 otherwise. Only the first few
// bytes are looked at, across reads however the network cut them: past
// those the cost is one comparison.
func (s *session) read(p []byte) (proxyVersion int) {
	s.info.BytesIn += int64(len(p))
	if s.head == 0 {
		return 0
	}
	return s.lookHead(p)
}

// lookHead matches p, the data's last bytes read, against what is left of
// proxyStarts. It is kept out of read, which is inlined where a driver
// reads: past the first bytes a read costs one comparison, not a call.
//
//go:noinline
func (s *session) lookHead(p []byte) int {
	at := int(s.info.BytesIn) - len(p)
	if at == 0 && len(p) > 0 && !proxyFirst[p[0]] {
		s.head = 0 // most clients' first byte: no start is compared
		return 0
	}
	for i, h := range proxyStarts {
		if s.head&(1<<i) == 0 {
			continue
		}
		rest := h[at:] // at < len(h): a start matched whole ends the look
		n := min(len(p), len(rest))
		switch {
		case string(p[:n]) != rest[:n]:
			s.head &^= 1 << i
		case n == len(rest):
			s.head = 0
			if i == len(proxyStarts)-1 {
				return 2
			}
			return 1
		}
	}
	return 0
}

// carried copies the bytes held from the last feed to the front of buf and
// returns how many there are: the driver reads after them.
func (s *session) carried(buf []byte) int {
	if s.held == 0 {
		return 0
	}
	return copy(buf, s.carry())
}

// feed transforms src (the carried bytes, then the bytes just read) into
// dst with t. It returns the bytes written to dst and read from src. When
// dst is too small for the rest it returns transform.ErrShortDst: the
// driver writes dst and calls feed again with src[nSrc:]. An incomplete
// character at the end of src is held for the next read, and counted as
// read.
func (s *session) feed(t transform.Transformer, dst, src []byte) (nDst, nSrc int, err error) {
	s.held = 0 // in src now
	nDst, nSrc, err = t.Transform(dst, src, false)
	if err != transform.ErrShortSrc {
		return nDst, nSrc, err
	}
	rest := src[nSrc:]
	if len(rest) > maxCarry {
		// Not an incomplete character: answer it as it is.
		n, m, err := t.Transform(dst[nDst:], rest, true)
		return nDst + n, nSrc + m, err
	}
	if len(rest) > len(s.small) && s.big == nil {
		s.big = new([maxCarry]byte)
	}
	s.held = uint16(len(rest))
	copy(s.carry(), rest)
	return nDst, len(src), nil
}

// flush answers the held bytes as they are, at the end of input, into dst
// with t; dst holds at least maxCarry*MaxExpansion bytes.
func (s *session) flush(t transform.Transformer, dst []byte) (n int, err error) {
	if s.held == 0 {
		return 0, nil
	}
	n, _, err = t.Transform(dst, s.carry(), true)
	s.held = 0
	return n, err
}
