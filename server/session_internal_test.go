package server

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/text/transform"
)

// proxyStartOf is the version of the PROXY header data begins as, 0 for
// none, and how many bytes that takes: what session.read is to find,
// however the reads cut data.
func proxyStartOf(data []byte) (version, at int) {
	for i, h := range proxyStarts {
		if strings.HasPrefix(string(data), h) {
			if i == len(proxyStarts)-1 {
				return 2, len(h) // version 2's signature
			}
			return 1, len(h)
		}
	}
	return 0, 0
}

// readCut feeds data to a new session cut at cuts (ascending offsets
// inside data) and checks that the read that completes a header's start,
// and only it, reports its version, and that BytesIn counts every byte.
func readCut(t *testing.T, data []byte, cuts []int) {
	t.Helper()
	var s session
	s.init()
	wantV, wantAt := proxyStartOf(data)
	from := 0
	for _, to := range append(cuts, len(data)) {
		v := s.read(data[from:to])
		want := 0
		if wantV != 0 && from < wantAt && wantAt <= to {
			want = wantV
		}
		if v != want {
			t.Fatalf("%q cut at %v: the read of [%d:%d] said version %d; want %d", data, cuts, from, to, v, want)
		}
		from = to
	}
	if s.info.BytesIn != int64(len(data)) {
		t.Fatalf("%q cut at %v: BytesIn %d; want %d", data, cuts, s.info.BytesIn, len(data))
	}
}

// proxyMatchInputs are the starts of a PROXY header and the data that
// comes closest to one without being one, each with data after it.
var proxyMatchInputs = []string{
	"PROXY TCP4 192.0.2.7 127.0.0.1 4242 8080\r\nhello\n",
	"PROXY TCP6 2001:db8::1 ::1 4242 8080\r\n",
	"PROXY UNKNOWN\r\n",
	"PROXY UNKNOWN",
	"PROXY TCP4 ",
	"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00\x00\x01\x7f\x00\x00\x01\x1f\x40\x1f\x41hello\n",
	"\r\n\r\n\x00\r\nQUIT\n",
	"PROXY TCP4", "PROXY TCP5 a b c d\r\n", "PROXY TCP44", "PROXY UNKNOW\r\n", "PROXY UNKNOWNX",
	"PROXY  TCP4 ", "PROXY tcp4 ", "proxy tcp4 1 2 3 4\r\n", "PROX", "PROXIMITY alert\n",
	"PROXY is a word that goes on past thirteen bytes\n",
	"\r\n\r\n\x00\r\nQUIT", "\r\n\r\n\x00\r\nQUIT\r", "\r\n\r\n\x00\r\nQUIet\n", "\r\n\r\n",
	"\r\nPROXY TCP4 ", " PROXY TCP4 ", "hello\nPROXY TCP4 1 2 3 4\r\n",
	"PROXY TCP4 \r\n\r\n\x00\r\nQUIT\n", "\r\n\r\n\x00\r\nQUIT\nPROXY TCP4 ",
	"", "P", "\r",
}

// A PROXY header's start is found on the read that completes it, once,
// and nothing else is one, whatever the cuts: every way of cutting each
// input in up to three reads, and a byte a read. BytesIn counts each byte
// once.
func TestSessionReadFindsAProxyStartAcrossReads(t *testing.T) {
	for _, in := range proxyMatchInputs {
		data := []byte(in)
		readCut(t, data, nil)
		for i := 0; i <= len(data); i++ {
			readCut(t, data, []int{i})
			for j := i; j <= len(data); j++ {
				readCut(t, data, []int{i, j})
			}
		}
		var bytewise []int
		for i := range len(data) {
			bytewise = append(bytewise, i)
		}
		readCut(t, data, bytewise)
	}
}

// FuzzSessionRead cuts any data at any points (each of cuts' bytes the
// length of the next read, 0 included) and checks what read finds, and
// that it does not panic.
func FuzzSessionRead(f *testing.F) {
	for _, in := range proxyMatchInputs {
		f.Add([]byte(in), []byte{4, 0, 1, 7})
	}
	f.Fuzz(func(t *testing.T, data, lens []byte) {
		var cuts []int
		at := 0
		for _, n := range lens {
			if at += int(n); at > len(data) {
				break
			}
			cuts = append(cuts, at)
		}
		readCut(t, data, cuts)
	})
}

// bracketed is a Transformer that holds an unclosed "[...", up to its
// "]", as an incomplete character: ASCII upper case once it is closed,
// as it is at the end of input. It allocates nothing.
type bracketed struct{ transform.NopResetter }

func (bracketed) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	n := len(src)
	if i := bytes.LastIndexByte(src, '['); i >= 0 && !atEOF && bytes.IndexByte(src[i:], ']') < 0 {
		n, err = i, transform.ErrShortSrc
	}
	if len(dst) < n {
		return 0, 0, transform.ErrShortDst
	}
	for i, b := range src[:n] {
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		dst[i] = b
	}
	return n, n, err
}

// A session holds what feed keeps back from one read to the next, up to
// maxCarry bytes, in its own 8 bytes or past them, in either order on one
// connection, and flush answers what is held at the end of input, once:
// the reads of each input, cut at every point, answer what the input
// does whole.
func TestSessionCarries(t *testing.T) {
	for _, in := range []string{
		"ab[cd]ef[" + strings.Repeat("x", 20) + "]gh[ij]",
		"[" + strings.Repeat("y", maxCarry-1) + "][z][" + strings.Repeat("w", 9) + "]",
		"[abcdefg][abcdefgh][abcdefghi][a",
		"[" + strings.Repeat("v", 30),
	} {
		want := strings.ToUpper(in)
		for cut := 1; cut <= len(in); cut++ {
			var s session
			s.init()
			var got []byte
			buf := make([]byte, 2*maxCarry+len(in))
			for at := 0; at < len(in); at += cut {
				k := s.carried(buf)
				n := copy(buf[k:], in[at:min(at+cut, len(in))])
				dst := make([]byte, k+n)
				nDst, nSrc, err := s.feed(bracketed{}, dst, buf[:k+n])
				if err != nil || nSrc != k+n {
					t.Fatalf("%q cut every %d: feed at %d: %d of %d read, %v", in, cut, at, nSrc, k+n, err)
				}
				got = append(got, dst[:nDst]...)
			}
			dst := make([]byte, maxCarry)
			n, err := s.flush(bracketed{}, dst)
			if got = append(got, dst[:n]...); err != nil || string(got) != want {
				t.Fatalf("%q cut every %d: answered %q, %v; want %q", in, cut, got, err, want)
			}
			if n, err := s.flush(bracketed{}, dst); n != 0 || err != nil || s.carried(buf) != 0 {
				t.Fatalf("%q cut every %d: flushed again: %q, %v, %d carried; want nothing", in, cut, dst[:n], err, s.carried(buf))
			}
		}
	}
}

// A session holds a carry of up to 8 bytes in itself, and makes its
// long buffer once, for the first carry past them: a connection that
// carries often allocates nothing more (before stop 59 its carry grew by
// append), and one that never carries past 8 bytes, as an incomplete
// UTF-8 character never does, allocates nothing at all.
func TestSessionCarryAllocs(t *testing.T) {
	// feed feeds each input whole: "a" and then what it holds back.
	dst := make([]byte, 2*maxCarry)
	feed := func(s *session, in [][]byte) {
		for _, in := range in {
			if _, _, err := s.feed(bracketed{}, dst, in); err != nil || int(s.held) != len(in)-1 {
				t.Fatalf("feed %q: held %d, %v; want %d", in, s.held, err, len(in)-1)
			}
		}
	}
	inputs := func(held ...string) (in [][]byte) {
		for _, h := range held {
			in = append(in, []byte("a"+h))
		}
		return in
	}
	var s session
	s.init()
	short := inputs("[", "[abcdef", "[abcdefg")
	if n := testing.AllocsPerRun(10, func() { feed(&s, short) }); n != 0 || s.big != nil {
		t.Errorf("carries of 1 to 8 bytes: %v allocations a run, long buffer %v; want none", n, s.big != nil)
	}
	long := inputs("[abcdefgh", "["+strings.Repeat("x", maxCarry-1), "[ab", "[abcdefghijk")
	feed(&s, long[:1])
	if n := testing.AllocsPerRun(10, func() { feed(&s, long) }); n != 0 {
		t.Errorf("carries past 8 bytes after the first: %v allocations a run, want none", n)
	}
}
