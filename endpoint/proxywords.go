package endpoint

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pires/go-proxyproto"

	"shout/server"
)

// malformed is err, go-proxyproto's refusal of the header c read from a
// trusted source, in words that say what the header held and what was
// expected (go-proxyproto's name the fault alone: "invalid length",
// "invalid address"), err wrapped. A refusal it has no words for is said
// to be of a malformed header; an error not go-proxyproto's (all of
// whose begin "proxyproto:") is err.
func (c *wholeHeader) malformed(err error) error {
	var said string
	switch {
	case c.v2(len(proxyproto.SIGV2)):
		said = c.v2Words(err)
	case c.seen > 0 && c.head[0] == sigV1[0]:
		said = v1Words(c.v1Line(), err)
	}
	switch {
	case said != "":
		return fmt.Errorf("%s: %w", said, err)
	case strings.HasPrefix(err.Error(), "proxyproto:"):
		return fmt.Errorf("a malformed PROXY header: %w", err)
	}
	return err
}

// v2Families are the address family and protocol bytes of a version 2
// header that carry addresses: as a user names them, and how many bytes
// their addresses take.
var v2Families = map[proxyproto.AddressFamilyAndProtocol]struct {
	name string
	size int
}{
	proxyproto.TCPv4:        {"TCP over IPv4", 12},
	proxyproto.UDPv4:        {"UDP over IPv4", 12},
	proxyproto.TCPv6:        {"TCP over IPv6", 36},
	proxyproto.UDPv6:        {"UDP over IPv6", 36},
	proxyproto.UnixStream:   {"Unix stream sockets", 216},
	proxyproto.UnixDatagram: {"Unix datagram sockets", 216},
}

// v2Words says what is wrong with a version 2 header that go-proxyproto
// refused with err; "" if err is none it words.
func (c *wholeHeader) v2Words(err error) string {
	// The byte after the signature, then the next (c.head's bytes not
	// read are 0).
	verCmd := proxyproto.ProtocolVersionAndCommand(c.head[12])
	family := proxyproto.AddressFamilyAndProtocol(c.head[13])
	switch {
	case errors.Is(err, proxyproto.ErrUnsupportedProtocolVersionAndCommand) && c.v2(13):
		return fmt.Sprintf("a PROXY v2 header whose version and command byte is %#02x (version %d, command %d), where %#02x (version 2, LOCAL) or %#02x (version 2, PROXY) is expected",
			byte(verCmd), verCmd>>4, verCmd&0xf, byte(proxyproto.LOCAL), byte(proxyproto.PROXY))
	case !c.v2(14):
		// (go-proxyproto refuses nothing else before its family.)
	case errors.Is(err, proxyproto.ErrUnsupportedAddressFamilyAndProtocol) && family == proxyproto.UNSPEC && verCmd == proxyproto.PROXY:
		return "a PROXY v2 header for an unspecified address family (UNSPEC) with the PROXY command: shout serves UNSPEC only with LOCAL (a balancer's own connection, such as a health check)"
	case errors.Is(err, proxyproto.ErrUnsupportedAddressFamilyAndProtocol):
		return fmt.Sprintf("a PROXY v2 header whose address family and protocol byte is %#02x, none of UNSPEC (0x00), TCP and UDP over IPv4 (0x11, 0x12), over IPv6 (0x21, 0x22) and over Unix sockets (0x31, 0x32)", byte(family))
	case errors.Is(err, proxyproto.ErrInvalidLength) && c.v2(v2Fixed):
		if f, ok := v2Families[family]; ok && c.v2Rest() < f.size {
			return fmt.Sprintf("a PROXY v2 header whose length gives %d bytes for its addresses, too few for %s (%d)", c.v2Rest(), f.name, f.size)
		}
	}
	return ""
}

// v1Line is a version 1 header's line, as the first read got it: to its
// LF, or all of it if none came.
func (c *wholeHeader) v1Line() []byte {
	b := c.head[:min(c.seen, len(c.head))]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	}
	return b
}

// v1Words says what is wrong with line, a version 1 header that
// go-proxyproto refused with err, quoting it; "" if err is none it words.
func v1Words(line []byte, err error) string {
	q := quote(line)
	fields := strings.Split(string(bytes.TrimSuffix(line, []byte("\r\n"))), " ")
	switch {
	case !bytes.HasPrefix(line, sigV1):
		// "PROXYjunk", "PROXY\r\n": go-proxyproto's error depends on
		// where the reads ended (its line end, or its length, checked
		// before its first word, in one read; that the line did not come
		// in one, a read cut after "PROXYj"), and such a line is no v1
		// header whatever its end.
		return `a line that begins "PROXY" and not "PROXY " as a PROXY v1 header does: ` + q
	case errors.Is(err, proxyproto.ErrVersion1HeaderTooLong):
		return fmt.Sprintf("a PROXY v1 header with no line end (CRLF) in its first %d bytes, the longest a header is: %s", v1Max, q)
	case errors.Is(err, proxyproto.ErrLineMustEndWithCrlf):
		return "a PROXY v1 header that ends in LF alone, not CRLF: " + q
	case errors.Is(err, proxyproto.ErrCantReadAddressFamilyAndProtocol) && (fields[1] == "TCP4" || fields[1] == "TCP6"):
		n := len(fields) - 2
		return fmt.Sprintf("a PROXY v1 header with %d %s after PROXY %s, where it takes 4 (source and destination addresses, then ports) one space apart: %s",
			n, map[bool]string{true: "field", false: "fields"}[n == 1], fields[1], q)
	case errors.Is(err, proxyproto.ErrCantReadAddressFamilyAndProtocol):
		return fmt.Sprintf("a PROXY v1 header whose protocol %s is none of TCP4, TCP6 and UNKNOWN: %s", quote([]byte(fields[1])), q)
	case len(fields) != 6:
		// (go-proxyproto refuses other counts first.)
	case errors.Is(err, proxyproto.ErrInvalidAddress):
		for i, what := range []string{"source", "destination"} {
			if why := v1AddressWrong(fields[1], fields[2+i]); why != "" {
				return fmt.Sprintf("a PROXY v1 header whose %s address %s %s: %s", what, quote([]byte(fields[2+i])), why, q)
			}
		}
	case errors.Is(err, proxyproto.ErrInvalidPortNumber):
		for i, what := range []string{"source", "destination"} {
			if port := fields[4+i]; !v1Port(port) {
				return fmt.Sprintf("a PROXY v1 header whose %s port %s is not a port, a number from 0 to 65535 with no leading zero: %s", what, quote([]byte(port)), q)
			}
		}
	}
	return ""
}

// v1AddressWrong says why s is not an address of protocol (TCP4 or
// TCP6) as a version 1 header writes one, as go-proxyproto reads it; ""
// if it is one.
func v1AddressWrong(protocol, s string) string {
	a, err := netip.ParseAddr(s)
	switch {
	case err == nil && a.Zone() != "":
		return "names a zone, which a header's address may not"
	case err == nil && protocol == "TCP4" && a.Is4():
		return ""
	case err == nil && protocol == "TCP6" && (a.Is6() || a.Is4() && proxyproto.V1AcceptIPv4InTCP6):
		return ""
	case protocol == "TCP4":
		return "is not an IPv4 address, as TCP4 requires"
	}
	return "is not an IPv6 address, as TCP6 requires"
}

// v1Port reports whether s is a port as a version 1 header writes one,
// as go-proxyproto reads it.
func v1Port(s string) bool {
	_, err := strconv.ParseUint(s, 10, 16)
	return err == nil && (len(s) == 1 || s[0] != '0')
}

// quote is b, what a client sent, quoted to be logged.
func quote(b []byte) string { return `"` + server.Escape(b) + `"` }
