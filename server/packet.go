package server

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"shout/internal/sockerr"

	"golang.org/x/text/transform"
)

// maxDatagram is the largest UDP payload; a read buffer this big never
// truncates a datagram, as the lesson's recvfrom(1024) does.
const maxDatagram = 65535

// ServePacket answers each datagram read from pc with its uppercase, sent
// back to where it came from, with one goroutine per CPU reading. It always
// returns a non-nil error and closes pc, once its goroutines have ended:
// after Shutdown or Close (or at once, on a Server stopped already) the
// error is ErrServerClosed; if pc is closed from outside, net.ErrClosed.
//
// A datagram whose reply would start a loop gets none: one that claims
// to come from the server's own address and port (on a wildcard
// listener: from its port and a loopback address, the datagram's
// destination or one of the host's addresses), one from a port whose
// service answers datagrams (echo, chargen, DNS, NTP and the like; see
// reflectorPort), and one that equals a reply sent to its source
// within the last 10 ms from the address it came to: that reply, bounced
// back by another echo service (any of them: several forged at once keep
// as many bouncing). (The same text sent to two of the
// server's addresses at once is answered at both.) Nor does a datagram
// whose source has spent its SourceRate budget, or whose reply the
// uppercase makes too large for one datagram (ReasonTooLarge, as is a
// Unix datagram longer than the 65,535 bytes a worker reads). Observers
// are told of each, with the Reason; of a datagram from a Unix datagram
// socket with no name, which has no address to be answered at
// (ReasonSendFailed); and of one whose reply Shutdown or Close closed
// the socket under (ReasonShutdown), which is no more answered than the
// others.
//
// On a Unix datagram socket a reply is sent without waiting: one that
// its client's queue cannot take now is not sent (ReasonSendFailed), so
// a client that does not read holds up no one else. Linux charges each
// datagram to its sender until it is read, though, so replies queued for
// a client connected to pc that never reads can fill pc's send buffer;
// until that client reads or closes, every reply then fails.
//
// On Unix, ServePacket clears a UDP socket's SO_BROADCAST, which Go sets
// on every one: a datagram whose forged source is a subnet's broadcast
// address (192.168.1.255) would otherwise have its reply sent to every
// host on that subnet. Its reply fails instead (ReasonSendFailed).
//
// On a wildcard listener (0.0.0.0, [::]) on Linux, a reply leaves from the
// address the datagram was sent to, which observers see as
// DatagramInfo.Local; elsewhere, from the address the kernel picks.
//
// On Linux, if pc is a *net.UDPConn, each goroutine reads up to 16
// datagrams with one system call (recvmmsg) and sends their replies with
// one (sendmmsg); each datagram is judged and observed as above, in the
// order read, its observer call after its reply is sent.
func (s *Server) ServePacket(pc net.PacketConn) error {
	workers := runtime.GOMAXPROCS(0)
	if !s.track(func() { s.packets[pc] = struct{}{}; s.wg.Add(workers) }) {
		pc.Close()
		return ErrServerClosed
	}
	p := s.newPacketConn(pc)
	s.logger().Debug("serving datagrams", "local", pc.LocalAddr().String(), "workers", workers)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range workers {
		wg.Go(func() {
			defer s.wg.Done()
			err := p.serve() // never nil
			errOnce.Do(func() { firstErr = err })
			pc.Close() // one failing stops the others
		})
	}
	wg.Wait()
	s.mu.Lock()
	delete(s.packets, pc)
	s.mu.Unlock()
	if s.closing.Load() {
		return ErrServerClosed
	}
	return firstErr
}

// packetConn is what the workers serving one PacketConn share.
type packetConn struct {
	s     *Server
	pc    net.PacketConn
	udp   *net.UDPConn // if pc is one: its AddrPort methods do not allocate
	obs   Observer
	trace PacketTrace // nil unless the Observer is a SocketTracer
	t     transform.Transformer
	local netip.AddrPort // pc's address, if it is a UDP address
	guard *guard
	src   *sources
	from  uint64 // local's origin in src
	// readFails: an ICMP error for an earlier reply can fail a read, and
	// a client can cause those at will.
	readFails limiter
	// cutLess: a batch worker cut replies less (Linux), as a client's way
	// out can make it do.
	//lint:ignore U1000 used by the batch workers, which only Linux has
	cutLess limiter
	// pktinfo: pc is a wildcard listener that learns each datagram's
	// destination and replies from it (Linux); v6: its socket is IPv6.
	pktinfo, v6 bool
}

func (s *Server) newPacketConn(pc net.PacketConn) *packetConn {
	p := &packetConn{s: s, pc: pc, obs: s.observer(), t: s.transformer(), src: s.sources()}
	p.udp, _ = pc.(*net.UDPConn)
	switch a := pc.LocalAddr().(type) {
	case *net.UDPAddr:
		p.local = a.AddrPort()
	case nil:
	default:
		p.local, _ = netip.ParseAddrPort(a.String())
	}
	p.guard = newGuard(p.local)
	p.from = p.src.origin(p.local)
	if st := s.socketTracer(); st != nil {
		p.trace = st.TracePacket(pc)
	}
	if p.udp != nil {
		noBroadcast(p.udp)
	}
	if p.udp != nil && p.local.Addr().IsUnspecified() {
		p.v6, p.pktinfo = enablePktinfo(p.udp)
	}
	return p
}

// packetWorker is one worker's buffers and the DatagramInfo it hands to
// observers, made once, so that a datagram allocates nothing.
type packetWorker struct {
	*packetConn
	in, out []byte
	oob, cm []byte // control messages: read, and to write (pktinfo)
	from    netip.Addr
	ifindex uint32 // the address to reply from, and its interface (pktinfo)
	d       DatagramInfo
}

func (p *packetConn) serve() error {
	if w := p.newBatchWorker(); w != nil {
		return w.serve()
	}
	w := &packetWorker{
		packetConn: p,
		in:         make([]byte, maxDatagram),
		out:        make([]byte, maxDatagram),
	}
	if p.pktinfo {
		w.oob, w.cm = make([]byte, pktinfoSpace), make([]byte, pktinfoSpace)
	}
	var delay time.Duration // after reads that failed
	for {
		var (
			n     int
			ap    netip.AddrPort
			addr  net.Addr // only if p.udp is nil
			trunc bool     // longer than w.in: only a Unix datagram can be
			err   error
		)
		local := p.local
		switch {
		case p.pktinfo:
			var oobn, flags int
			n, oobn, flags, ap, err = p.udp.ReadMsgUDPAddrPort(w.in, w.oob)
			var dst netip.Addr
			dst, w.from, w.ifindex = parsePktinfo(w.oob[:oobn], flags)
			if dst.IsValid() {
				local = netip.AddrPortFrom(dst, local.Port())
			}
		case p.udp != nil:
			n, ap, err = p.udp.ReadFromUDPAddrPort(w.in)
		default:
			n, addr, trunc, err = readFrom(p.pc, w.in)
			if ua, ok := addr.(*net.UDPAddr); ok {
				ap = ua.AddrPort()
			}
		}
		if err != nil {
			if err := p.readError(err, &delay); err != nil {
				return err
			}
			continue
		}
		delay = 0
		w.d = DatagramInfo{Remote: ap, Local: local, Data: w.in[:n]}
		if p.trace != nil {
			p.trace.Recvfrom(&w.d)
		}
		if trunc {
			// Its reply, were it made, would not fit either.
			w.d.Reason = ReasonTooLarge
		} else {
			w.answer(addr)
		}
		if p.trace != nil {
			p.trace.Sendto(&w.d, w.out[:w.d.BytesOut])
		}
		p.obs.Datagram(&w.d)
	}
}

// readError returns the error that ends a worker after a read failed
// with err, or nil if the worker should read on.
//
// An ICMP error for an earlier reply fails a read (with IP_RECVERR, and
// on Windows), and a client can cause those at will, one per datagram
// (sockerr.FromICMP):
// the worker reads on at once. Any other failure may come again on every
// read (a deadline someone set on the socket, a system out of memory):
// the worker waits before it reads again, as Serve does after a failed
// accept (retryDelay). delay is the worker's wait, which it sets back to
// zero when a read succeeds.
func (p *packetConn) readError(err error, delay *time.Duration) error {
	if p.s.closing.Load() {
		return ErrServerClosed
	}
	if errors.Is(err, net.ErrClosed) {
		return err
	}
	wait := time.Duration(0)
	if !sockerr.FromICMP(err) {
		*delay = retryDelay(*delay)
		wait = *delay
	}
	if ok, n := p.readFails.allow(); ok {
		p.s.logger().Warn("datagram read failed", "local", p.pc.LocalAddr().String(), "err", err, "total", n, "retry_in", wait)
	}
	if wait > 0 {
		p.s.pause(wait)
	}
	return nil
}

// answer decides whether w.d deserves a reply, and sends it to addr (to
// w.d.Remote on a UDP socket), recording in w.d what it did.
func (w *packetWorker) answer(addr net.Addr) {
	d := &w.d
	v, ok := w.admit(d)
	if !ok {
		return
	}
	reply, ok := w.transform(d, w.out)
	if !ok || !w.charge(d, v, reply) {
		return
	}
	var err error
	switch {
	case w.pktinfo:
		_, _, err = w.udp.WriteMsgUDPAddrPort(reply, pktinfoFrom(w.cm, w.v6, w.from, w.ifindex), d.Remote)
	case w.udp != nil:
		_, err = w.udp.WriteToUDPAddrPort(reply, d.Remote)
	case addr == nil:
		err = errNoReturnAddress
	default:
		err = writeToNow(w.pc, reply, addr)
	}
	if err != nil {
		d.Reason, d.Err = w.unsent(err), err
	}
}

// unsent is the reason of a reply that sending failed with err:
// ReasonShutdown if it was Shutdown or Close that closed the socket under
// it, else ReasonSendFailed. Either way it is not reported as answered:
// it was not sent.
func (p *packetConn) unsent(err error) Reason {
	if p.s.cutByStop(err) {
		return ReasonShutdown
	}
	return ReasonSendFailed
}

// errNoReturnAddress is why a datagram from a Unix datagram socket with no
// name gets no reply.
var errNoReturnAddress = errors.New("server: the sender has no address to reply to (a Unix datagram socket with no name)")

// admission is what admit learned of a datagram's source, for charge.
type admission struct {
	src  sourceRef
	from uint64 // the origin of the address d came to, and its reply leaves from
	now  int64
	udp  bool
}

// admit reports whether d may be answered, as far as the guard and its
// source's budget tell before it is transformed; if not, d.Reason says
// why. It changes nothing, so it may be asked again.
func (p *packetConn) admit(d *DatagramInfo) (admission, bool) {
	// A source that is not a UDP address (a Unix datagram socket's) is
	// local: it is answered without question.
	v := admission{udp: d.Remote.IsValid()}
	if !v.udp {
		return v, true
	}
	if d.Reason = p.guard.check(d.Remote, d.Local); d.Reason != ReasonNone {
		return v, false
	}
	v.now = p.src.now()
	v.src = p.src.lookup(d.Remote)
	v.from = p.from
	if d.Local != p.local {
		v.from = p.src.origin(d.Local) // one of a wildcard listener's addresses
	}
	// Before the transform, so that a flood over its budget costs little
	// more than its reads.
	d.Reason = p.src.admit(v.src, v.from, v.now, d.Data)
	return v, d.Reason == ReasonNone
}

// The largest UDP payloads: what one datagram carries over IPv4, and
// over IPv6 (without jumbograms).
const (
	maxUDP4 = 65535 - 20 - 8
	maxUDP6 = 65535 - 8
)

// maxReply is the largest reply one datagram to remote carries: a UDP
// datagram's payload for its family (an IPv4-mapped client is reached
// over IPv4), or the buffer's size for a Unix datagram socket.
func maxReply(remote netip.AddrPort) int {
	switch {
	case !remote.IsValid():
		return maxDatagram
	case remote.Addr().Unmap().Is4():
		return maxUDP4
	}
	return maxUDP6
}

// transform writes d's reply into out and returns it; if it does not
// fit, in out or in one datagram to d.Remote (ReasonTooLarge), or cannot
// be made, it reports false with d.Reason set. d.BytesOut is the reply's
// size.
func (p *packetConn) transform(d *DatagramInfo, out []byte) ([]byte, bool) {
	out = out[:min(len(out), maxReply(d.Remote))]
	nDst, _, err := p.t.Transform(out, d.Data, true)
	d.BytesOut = nDst
	switch {
	case err == transform.ErrShortDst:
		d.Reason, d.BytesOut = ReasonTooLarge, 0
		return nil, false
	case err != nil:
		d.Reason, d.Err = ReasonSendFailed, err
		return nil, false
	}
	return out[:nDst], true
}

// charge takes reply from the budget of d's source, and reports whether
// it could afford it (if not, d.Reason is ReasonBudget).
func (p *packetConn) charge(d *DatagramInfo, v admission, reply []byte) bool {
	if v.udp && !p.src.charge(v.src, v.from, v.now, reply) {
		d.Reason = ReasonBudget
		return false
	}
	return true
}
