package endpoint

import (
	"errors"
	"io"
	"testing"

	"github.com/pires/go-proxyproto"
)

// A refusal of go-proxyproto's that malformed has no words for (none
// today: a newer go-proxyproto's, or one a change to wholeHeader lets
// through) is said to be of a malformed PROXY header, its error kept;
// an error not go-proxyproto's is its own.
func TestMalformedWithoutWords(t *testing.T) {
	for _, tc := range []struct {
		name, head string
		err        error
		want       string
	}{
		{"v1", "PROXY TCP4 203.0.113.7 192.0.2.1 4242 8080\r\n", proxyproto.ErrCantReadVersion1Header,
			"a malformed PROXY header: proxyproto: can't read version 1 header"},
		{"v2", string(proxyproto.SIGV2) + "\x21\x11\x00\x0c", proxyproto.ErrInvalidPortNumber,
			"a malformed PROXY header: proxyproto: invalid port number"},
		{"none", "", proxyproto.ErrInvalidLength, "a malformed PROXY header: proxyproto: invalid length"},
		{"not go-proxyproto's", "PROXY TCP4 203.0.113.7 ", io.ErrUnexpectedEOF, "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &wholeHeader{}
			c.seen = copy(c.head[:], tc.head)
			if got := c.malformed(tc.err); got.Error() != tc.want || !errors.Is(got, tc.err) {
				t.Errorf("%q refused with %v: %v; want %q, wrapping it", tc.head, tc.err, got, tc.want)
			}
		})
	}
}
