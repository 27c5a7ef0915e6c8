package server

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"

	"golang.org/x/text/transform"
)

// maxDatagram is the largest UDP payload; a read buffer this big never
// truncates a datagram, as the lesson's recvfrom(1024) does.
const maxDatagram = 65535

// ServePacket answers each datagram read from pc with its uppercase, sent
// back to where it came from, with one goroutine per CPU reading. It always
// returns a non-nil error and closes pc; after Shutdown or Close the error
// is ErrServerClosed. A reply that the uppercase makes too large for one
// datagram is not sent; observers are told of it.
func (s *Server) ServePacket(pc net.PacketConn) error {
	workers := runtime.GOMAXPROCS(0)
	if !s.track(func() { s.packets[pc] = struct{}{}; s.wg.Add(workers) }) {
		pc.Close()
		return ErrServerClosed
	}
	obs := s.observer()
	s.logger().Debug("serving datagrams", "local", pc.LocalAddr().String(), "workers", workers)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range workers {
		wg.Go(func() {
			defer s.wg.Done()
			if err := s.servePackets(pc, obs); err != nil {
				errOnce.Do(func() { firstErr = err })
			}
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

func (s *Server) servePackets(pc net.PacketConn, obs Observer) error {
	t := s.transformer()
	in := make([]byte, maxDatagram)
	out := make([]byte, maxDatagram)
	udp, _ := pc.(*net.UDPConn) // ReadFromUDPAddrPort does not allocate
	var local netip.AddrPort
	if a, ok := pc.LocalAddr().(*net.UDPAddr); ok {
		local = a.AddrPort()
	}
	for {
		var (
			n    int
			ap   netip.AddrPort
			addr net.Addr
			err  error
		)
		if udp != nil {
			n, ap, err = udp.ReadFromUDPAddrPort(in)
		} else {
			n, addr, err = pc.ReadFrom(in)
			if ua, ok := addr.(*net.UDPAddr); ok {
				ap = ua.AddrPort()
			}
		}
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			s.logger().Warn("datagram read failed", "local", pc.LocalAddr().String(), "err", err)
			continue
		}
		d := DatagramInfo{Remote: ap, Local: local, Data: in[:n]}
		nDst, _, terr := t.Transform(out, in[:n], true)
		d.BytesOut = nDst
		switch {
		case terr == transform.ErrShortDst:
			d.Reason, d.BytesOut = ReasonTooLarge, 0
		case terr != nil:
			d.Reason, d.Err = ReasonSendFailed, terr
		default:
			reply := out[:nDst]
			if udp != nil {
				_, err = udp.WriteToUDPAddrPort(reply, ap)
			} else {
				_, err = pc.WriteTo(reply, addr)
			}
			if err != nil && !s.closing.Load() {
				d.Reason, d.Err = ReasonSendFailed, err
			}
		}
		obs.Datagram(&d)
	}
}
