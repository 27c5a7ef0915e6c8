package client

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"shout/endpoint"
	"shout/internal/sockerr"
)

// A UDP server's name may have several addresses (localhost: ::1 and
// 127.0.0.1, where shout serve listens on 127.0.0.1 alone), and over UDP
// connecting tries none of them: the first one is taken, and a server
// listening only on another was refused every line ("connection
// refused: lost") where TCP's connect went on to the next address and
// was answered. So a datagram refused at one address (an ICMP port
// unreachable: nothing listens there, nothing was taken) is sent again to
// the name's next address, and later sockets to the name go first to the
// last one a line went on to that did not refuse it. One that refused
// too is not remembered: the order stays as it was (the last address
// that took a line first, or the resolver's), and each line refused at
// every address is offered to each again, in that order. A refusal
// costs no try (no wait: it comes back in a round trip), and a server
// that comes up later at any of them takes the next line.

// lookupNetIP resolves a name; a test gives one of its own.
var lookupNetIP = net.DefaultResolver.LookupNetIP

// udpRest is what a UDP socket dialled to a name keeps to go on with:
// the name, the addresses it has not tried, and the dial's time limit.
type udpRest struct {
	name    string // host:port as dialled
	port    string
	addrs   []netip.Addr
	timeout time.Duration
}

// udpNameConn is a UDP socket dialled to one of a name's addresses,
// addr, with the addresses left for nextAddress. next says it was
// dialled by nextAddress, after another address refused: settled
// remembers addr then.
type udpNameConn struct {
	*net.UDPConn
	rest udpRest
	addr netip.Addr
	next bool
}

// udpAnswered is, for each name (host:port) dialled over UDP, the
// address that a line last went on to after another was refused, and
// that did not refuse it: each line's socket is dialled anew, by the
// caller's dial, and goes there first.
var udpAnswered sync.Map

// dialUDPName dials e, over UDP to a name, at the first of its addresses
// (the one remembered, if one is), and keeps the rest for nextAddress.
// ok is false where e is no name (an address): Dial dials it as it is.
func dialUDPName(ctx context.Context, e endpoint.Endpoint, timeout time.Duration) (c net.Conn, ok bool, err error) {
	host, port, err := net.SplitHostPort(e.Address)
	if err != nil {
		return nil, false, nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil, false, nil
	}
	lctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		lctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	addrs, err := lookupNetIP(lctx, "ip", host)
	if err != nil {
		return nil, true, err // (not looked up again, to wait as long again)
	}
	if len(addrs) == 0 { // (the resolver says no such host itself)
		return nil, false, nil
	}
	if a, found := udpAnswered.Load(e.Address); found {
		if i := slices.Index(addrs, a.(netip.Addr)); i > 0 {
			addrs = append([]netip.Addr{addrs[i]}, slices.Delete(slices.Clone(addrs), i, i+1)...)
		}
	}
	u, err := dialUDPRest(ctx, udpRest{name: e.Address, port: port, addrs: addrs, timeout: timeout})
	if err != nil {
		return nil, true, err
	}
	if len(u.rest.addrs) == 0 {
		return u.UDPConn, true, nil // (no address to go on to)
	}
	return u, true, nil
}

// dialUDPRest dials r's first address that can be dialled (where
// IPv6 is off, ::1 cannot), as net.Dialer goes on to a name's next
// address, and keeps the others for nextAddress. The error is the first
// address's.
func dialUDPRest(ctx context.Context, r udpRest) (*udpNameConn, error) {
	d := net.Dialer{Timeout: r.timeout}
	var first error
	for len(r.addrs) > 0 {
		a := r.addrs[0]
		r.addrs = r.addrs[1:]
		c, err := DialNetwork(ctx, d, "udp", net.JoinHostPort(a.Unmap().String(), r.port))
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		return &udpNameConn{UDPConn: c.(*net.UDPConn), rest: r, addr: a}, nil
	}
	if first == nil {
		first = errors.New("no address left") // (a name has one at least: not seen)
	}
	return nil, first
}

// nextAddress is a socket to the next address of the name c was dialled
// to, after c's was refused, traced as c is; nil if there is none.
// Later dials of the name go there first once settled says it did not
// refuse the line.
func nextAddress(c net.Conn) net.Conn {
	inner := c
	t, traced := c.(*tracedConn)
	if traced {
		inner = t.Conn
	}
	u, ok := inner.(*udpNameConn)
	if !ok || len(u.rest.addrs) == 0 {
		return nil
	}
	next, err := dialUDPRest(context.Background(), u.rest)
	if err != nil {
		return nil
	}
	next.next = true
	if traced {
		return Trace(next, t.w)
	}
	return next
}

// settled is told that the line on c ended with err (nil: answered, or
// lost without a refusal). Where c went to an address that nextAddress
// took after a refusal and err is no refusal, later dials of the name go
// there first; an address that refused the line is not remembered.
func settled(c net.Conn, err error) {
	if err != nil && sockerr.Refused(err) {
		return
	}
	if t, ok := c.(*tracedConn); ok {
		c = t.Conn
	}
	if u, ok := c.(*udpNameConn); ok && u.next {
		udpAnswered.Store(u.rest.name, u.addr)
	}
}
