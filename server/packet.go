package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
)

// maxDatagram is the largest UDP payload; a read buffer this big never
// truncates a datagram, as the lesson's recvfrom(1024) does.
const maxDatagram = 65535

// ServePacket answers each datagram read from pc with its uppercase, sent
// back to where it came from, with one goroutine per CPU reading. It always
// returns a non-nil error and closes pc; after Shutdown or Close the error
// is ErrServerClosed. A reply that the uppercase makes too large for one
// datagram is not sent, and a warning is logged, at most once a second.
func (s *Server) ServePacket(pc net.PacketConn) error {
	workers := runtime.GOMAXPROCS(0)
	if !s.track(func() { s.packets[pc] = struct{}{}; s.wg.Add(workers) }) {
		pc.Close()
		return ErrServerClosed
	}
	s.logger().Debug("serving datagrams", "local", pc.LocalAddr().String(), "workers", workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			defer s.wg.Done()
			errs[i] = s.servePackets(pc)
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
	return errors.Join(errs...)
}

func (s *Server) servePackets(pc net.PacketConn) error {
	t := s.transformer()
	log := s.logger()
	debug := log.Enabled(context.Background(), slog.LevelDebug)
	in := make([]byte, maxDatagram)
	out := make([]byte, t.MaxExpansion()*maxDatagram)
	udp, _ := pc.(*net.UDPConn) // ReadFromUDPAddrPort does not allocate
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
		}
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			log.Warn("datagram read failed", "local", pc.LocalAddr().String(), "err", err)
			continue
		}
		reply := t.Append(out[:0], in[:n])
		if udp != nil {
			_, err = udp.WriteToUDPAddrPort(reply, ap)
		} else {
			_, err = pc.WriteTo(reply, addr)
		}
		switch {
		case err != nil && !s.closing.Load():
			if ok, total := s.unsent.allow(); ok {
				log.Warn("reply not sent", "remote", remoteOf(ap, addr), "bytes_in", n, "bytes_out", len(reply), "err", err, "unsent_total", total)
			}
		case err == nil && debug:
			log.Debug("datagram", "remote", remoteOf(ap, addr), "bytes", n, "data", string(in[:min(n, logPrefix)]))
		}
	}
}

// remoteOf names a datagram's sender, from whichever read found it.
func remoteOf(ap netip.AddrPort, addr net.Addr) string {
	if addr != nil {
		return addr.String()
	}
	return ap.String()
}
