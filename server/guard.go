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
// the services used for reflection attacks. Few clients send from these
// ports: all but 10001 and 11211 are below every system's ephemeral range
// (Linux's starts at 32768, Windows' and macOS's at 49152, FreeBSD's at
// 10000), and a NAT that remaps a port to one from 1024 up lands on one
// of them (the 12 from 1194) about once in 5,000. Ports of abused
// services inside Linux's or Windows' range (Jenkins' 33848, DVRs' 37810)
// are left out: a load tool's sockets on this machine would land on them.
func reflectorPort(p uint16) bool {
	switch p {
	case 0, // not a real port: a forgery
		7,     // echo: answers anything with itself
		9,     // discard
		13,    // daytime: answers any datagram
		17,    // quote of the day: answers any datagram
		19,    // chargen: answers any datagram, with up to 512 bytes
		37,    // time: answers any datagram
		53,    // DNS: reflection and amplification
		69,    // TFTP: answers a bad request with an error packet
		111,   // portmapper (rpcbind): amplification
		123,   // NTP: amplification (monlist)
		137,   // NetBIOS name service: amplification
		138,   // NetBIOS datagram service
		161,   // SNMP: amplification (GetBulk)
		162,   // SNMP trap
		389,   // CLDAP: amplification
		427,   // SLP: amplification (CVE-2023-29552)
		520,   // RIP: amplification (RIPv1 requests)
		1194,  // OpenVPN: answers a reset with a reset (with no tls-auth)
		1434,  // Microsoft SQL Server browser: amplification
		1900,  // SSDP: amplification
		3283,  // Apple Remote Desktop: amplification
		3389,  // RDP over UDP: amplification
		3478,  // STUN: answers binding requests; amplification
		3702,  // WS-Discovery: amplification
		5060,  // SIP: answers any request, even a bad one; amplification
		5353,  // multicast DNS: amplification
		5683,  // CoAP: amplification
		10001, // Ubiquiti discovery: amplification
		11211: // memcached: amplification (about 50,000 times)
		return true
	}
	return false
}

// unmapPort returns ap with an IPv4-mapped IPv6 address made IPv4.
func unmapPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
