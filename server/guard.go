package server

import (
	"net"
	"net/netip"
	"slices"
)

// guard turns away datagrams whose reply would start a loop: those that
// claim to come from the server itself, and those from ports whose
// services answer datagrams. A UDP source can be forged, so one such
// datagram would otherwise keep the server answering itself, or another
// echo service, forever.
type guard struct {
	local    netip.AddrPort // the listener's address, unmapped
	wildcard bool           // bound to 0.0.0.0 or [::]
	// own holds this host's interface addresses (unmapped, no zone) on a
	// wildcard listener, as they were when serving began.
	own []netip.Addr
}

func newGuard(local netip.AddrPort) *guard {
	g := &guard{local: unmapPort(local), wildcard: local.Addr().IsUnspecified()}
	if g.wildcard {
		// A snapshot: an address added later is still caught when it is
		// the datagram's destination (see check).
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if p, err := netip.ParsePrefix(a.String()); err == nil {
					g.own = append(g.own, p.Addr().Unmap().WithZone(""))
				}
			}
		}
	}
	return g
}

// check returns why a datagram from src, sent to dst (the listener's
// address if unknown), must not be answered, or ReasonNone.
func (g *guard) check(src, dst netip.AddrPort) Reason {
	a := src.Addr().Unmap().WithZone("")
	if a.IsUnspecified() {
		return ReasonOwnAddress // 0.0.0.0 and :: mean this host
	}
	if src.Port() == g.local.Port() {
		if !g.wildcard {
			if a == g.local.Addr().WithZone("") {
				return ReasonOwnAddress
			}
		} else if a.IsLoopback() || a == dst.Addr().Unmap().WithZone("") || slices.Contains(g.own, a) {
			// Any of them may be this very socket.
			return ReasonOwnAddress
		}
	}
	if reflectorPort(src.Port()) {
		return ReasonReflectorPort
	}
	return ReasonNone
}

// reflectorPort reports whether a service on port p answers datagrams, so
// that a reply to it would be answered in turn: the classic UDP loops and
// the services used for reflection attacks. No client sends from these
// ports (they are below the ephemeral range), so nothing real is lost.
func reflectorPort(p uint16) bool {
	switch p {
	case 0, // not a real port: a forgery
		7,     // echo
		9,     // discard
		13,    // daytime
		17,    // quote of the day
		19,    // chargen
		37,    // time
		53,    // DNS
		69,    // TFTP
		111,   // portmapper (rpcbind)
		123,   // NTP
		137,   // NetBIOS name service
		138,   // NetBIOS datagram service
		161,   // SNMP
		162,   // SNMP trap
		389,   // CLDAP
		520,   // RIP
		1434,  // Microsoft SQL Server browser
		1900,  // SSDP
		3702,  // WS-Discovery
		5353,  // multicast DNS
		5683,  // CoAP
		11211: // memcached
		return true
	}
	return false
}

// unmapPort returns ap with an IPv4-mapped IPv6 address made IPv4.
func unmapPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
