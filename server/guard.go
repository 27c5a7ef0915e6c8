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
// the services used for reflection attacks. A port is listed when its
// service answers a datagram from anyone (an advisory or CVE names it as
// a reflection vector: CISA's alert TA14-017A, "UDP-based amplification
// attacks", names many) and the port lies outside Linux's (32768-60999)
// and Windows' and macOS's (49152-65535) default ephemeral ranges, where
// nearly every client's socket gets its port: a client's own port must
// not be refused (TestReflectorPortsOutsideEphemeralRanges). So ports of
// abused services inside them (Jenkins' 33848, DVRs' 37810) are left
// out; those just below Linux's (Plex's 32410 and 32414) are not. No list can miss
// every system's range: FreeBSD's starts at 10000 (IPPORT_EPHEMERALFIRST)
// and OpenBSD's is 1024-49151, so a socket there lands on a listed port
// (the 8 from 10001; the 21 from 1194) about once in 6,900 on FreeBSD,
// once in 2,300 on OpenBSD, and is not answered; so does a NAT that
// remaps a port to one from 1024 up, about once in 3,100. Loopback
// sources are not exempt, though only this host should send from them:
// kube-proxy sets net.ipv4.conf.all.route_localnet=1 on its nodes, and
// then the network's neighbours reach 127.0.0.1 (CVE-2020-8558).
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
		500,   // IKE: answers an offer it will not take with a notify (NO_PROPOSAL_CHOSEN)
		520,   // RIP: amplification (RIPv1 requests)
		623,   // ASF-RMCP (IPMI): answers an RMCP ping with a pong; amplification
		1194,  // OpenVPN: answers a reset with a reset (with no tls-auth)
		1434,  // Microsoft SQL Server browser: amplification
		1604,  // Citrix ICA browser: answers a query with its list of servers; amplification
		1900,  // SSDP: amplification
		3283,  // Apple Remote Desktop: amplification
		3389,  // RDP over UDP: amplification
		3478,  // STUN: answers binding requests; amplification
		3702,  // WS-Discovery: amplification
		5060,  // SIP: answers any request, even a bad one; amplification
		5351,  // NAT-PMP: answers any request, one of another version with an error (RFC 6886)
		5353,  // multicast DNS: amplification
		5683,  // CoAP: amplification
		6881,  // BitTorrent DHT, its usual port: answers a bad query with an error (BEP 5); TA14-017A
		10001, // Ubiquiti discovery: amplification
		10074, // Mitel MiCollab TP-240: one datagram starts a flood (CVE-2022-26143, some 4 billion times)
		11211, // memcached: amplification (about 50,000 times)
		17185, // VxWorks WDB debug agent: answers RPC requests, memory reads among them (CVE-2010-2965)
		27015, // Steam (Source) server queries: amplification (TA14-017A)
		27960, // Quake III server status queries: amplification (TA14-017A, "Quake Network Protocol")
		32410, // Plex Media Server discovery (GDM) too: NETSCOUT's advisory on 32414 (rev. 1.1) adds attacks seen from 32410
		32414: // Plex Media Server discovery (GDM): answers an M-SEARCH from anyone; amplification (NETSCOUT, 2021)
		return true
	}
	return false
}

// unmapPort returns ap with an IPv4-mapped IPv6 address made IPv4.
func unmapPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
