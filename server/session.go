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

// session is what one stream connection is, whatever moves its bytes: the
// transformer, the bytes of an incomplete character carried from one read
// to the next, and what an observer learns (counts, times, why it ended).
// A driver reads, puts the carried bytes in front of what it read (see
// carried), and hands both to feed; it writes what feed returns. The
// session never touches a socket.
type session struct {
	t    transform.Transformer
	info ConnInfo
	// carry holds an incomplete character from the last feed.
	carry    []byte
	carryBuf [8]byte
}

func (s *session) init(t transform.Transformer) {
	s.t = t
	s.carry = s.carryBuf[:0]
}

// carried copies the bytes held from the last feed to the front of buf and
// returns how many there are: the driver reads after them.
func (s *session) carried(buf []byte) int {
	return copy(buf, s.carry)
}

// feed transforms src (the carried bytes, then the bytes just read) into
// dst. It returns the bytes written to dst and read from src. When dst is
// too small for the rest it returns transform.ErrShortDst: the driver
// writes dst and calls feed again with src[nSrc:]. An incomplete
// character at the end of src is held for the next read, and counted as
// read.
func (s *session) feed(dst, src []byte) (nDst, nSrc int, err error) {
	s.carry = s.carry[:0] // in src now
	nDst, nSrc, err = s.t.Transform(dst, src, false)
	if err != transform.ErrShortSrc {
		return nDst, nSrc, err
	}
	rest := src[nSrc:]
	if len(rest) > maxCarry {
		// Not an incomplete character: answer it as it is.
		n, m, err := s.t.Transform(dst[nDst:], rest, true)
		return nDst + n, nSrc + m, err
	}
	s.carry = append(s.carry[:0], rest...)
	return nDst, len(src), nil
}

// flush answers the held bytes as they are, at the end of input, into dst,
// which holds at least maxCarry*MaxExpansion bytes.
func (s *session) flush(dst []byte) (n int, err error) {
	if len(s.carry) == 0 {
		return 0, nil
	}
	n, _, err = s.t.Transform(dst, s.carry, true)
	s.carry = s.carry[:0]
	return n, err
}
