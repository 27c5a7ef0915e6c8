//go:build linux

// Command uringecho is the io_uring prototype BENCHMARKS.md measures
// against the event loops: a TCP uppercase echo (ASCII only) on one ring
// and one goroutine, with multishot accept, multishot recv from a
// provided buffer ring (an idle connection holds no buffer) and one send
// in flight per connection, and a datagram echo on the same port in Go's
// netpoller, to see whether datagrams wait for a loop that blocks.
//
//	uringecho -addr 127.0.0.1:9000 -wait block -setup defer
//
// -wait block waits in io_uring_enter; -wait netpoll parks in Go's
// netpoller on an eventfd the ring signals. -setup coop adds
// IORING_SETUP_COOP_TASKRUN|TASKRUN_FLAG; -setup defer adds
// SINGLE_ISSUER|DEFER_TASKRUN on a locked thread (with -wait netpoll it
// hangs: the ring's work waits for an io_uring_enter that never comes).
// It is a measurement, not a server: no limits, no timeouts, no stop.
package main

import (
	"bytes"
	"flag"
	"log"
	"net"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	kindAccept = iota + 1
	kindRecv
	kindSend
	bgid = 0
)

func ud(kind, fd int) uint64 { return uint64(kind)<<32 | uint64(uint32(fd)) }

type pend struct {
	bid    uint16
	off, n uint32
}

type conn struct {
	q       []pend // replies waiting to be sent, in order; q[0] is in flight if sending
	sending bool   // one send in flight per fd keeps replies ordered
	recving bool   // multishot recv armed
	starved bool   // recv ended with ENOBUFS; re-arm when buffers return
	closing bool   // EOF or error seen: close once idle
}

type server struct {
	r       *ring
	br      *bufRing
	lfd     int
	conns   []*conn // indexed by fd
	starved []int
}

func (s *server) conn(fd int) *conn {
	for fd >= len(s.conns) {
		s.conns = append(s.conns, nil)
	}
	if s.conns[fd] == nil {
		s.conns[fd] = &conn{}
	}
	return s.conns[fd]
}

func (s *server) armAccept() {
	e := s.r.getSQE()
	e.opcode, e.fd, e.ioprio, e.opFlags = opAccept, int32(s.lfd), acceptMultishot, unix.SOCK_CLOEXEC
	e.userData = ud(kindAccept, s.lfd)
}

func (s *server) armRecv(fd int, c *conn) {
	e := s.r.getSQE()
	e.opcode, e.fd, e.ioprio, e.flags, e.bufGroup = opRecv, int32(fd), recvMultishot, sqeBufferSelect, bgid
	e.userData = ud(kindRecv, fd)
	c.recving = true
}

func (s *server) sendHead(fd int, c *conn) {
	p := c.q[0]
	e := s.r.getSQE()
	e.opcode, e.fd, e.opFlags = opSend, int32(fd), unix.MSG_NOSIGNAL
	e.addr = uint64(uintptr(unsafe.Pointer(&s.br.buf(p.bid)[p.off])))
	e.len = p.n
	e.userData = ud(kindSend, fd)
	c.sending = true
}

// fail drops queued replies and makes a pending multishot recv finish.
func (s *server) fail(fd int, c *conn) {
	c.closing = true
	start := 0
	if c.sending {
		start = 1 // the in-flight buffer is released by its send CQE
	}
	for _, p := range c.q[start:] {
		s.br.put(p.bid)
	}
	c.q = c.q[:start]
	if c.recving {
		unix.Shutdown(fd, unix.SHUT_RDWR)
	}
	s.maybeClose(fd, c)
}

func (s *server) maybeClose(fd int, c *conn) {
	if c.closing && !c.sending && !c.recving && len(c.q) == 0 && s.conns[fd] == c {
		unix.Close(fd)
		s.conns[fd] = nil
	}
}

func (s *server) handle(e *cqe) {
	fd := int(uint32(e.userData))
	switch e.userData >> 32 {
	case kindAccept:
		if e.res >= 0 {
			nfd := int(e.res)
			s.armRecv(nfd, s.conn(nfd))
		} else {
			log.Printf("accept: %v", unix.Errno(-e.res))
		}
		if e.flags&cqeFMore == 0 {
			s.armAccept()
		}

	case kindRecv:
		c := s.conns[fd]
		more := e.flags&cqeFMore != 0
		if !more {
			c.recving = false
		}
		if e.flags&cqeFBuffer != 0 {
			s.br.nfree--
			bid := uint16(e.flags >> cqeBufShift)
			if e.res <= 0 || c.closing {
				s.br.put(bid)
			} else {
				b := s.br.buf(bid)[:e.res]
				for i, ch := range b {
					if ch-'a' < 26 {
						b[i] = ch - 32
					}
				}
				c.q = append(c.q, pend{bid: bid, n: uint32(e.res)})
				if !c.sending {
					s.sendHead(fd, c)
				}
			}
		}
		switch {
		case e.res > 0:
			if !more && !c.closing {
				s.armRecv(fd, c)
			}
		case e.res == -int32(unix.ENOBUFS) && !more && !c.closing:
			c.starved = true
			s.starved = append(s.starved, fd)
		case e.res == 0 || !more: // EOF: flush queued replies, then close; error: drop them
			c.closing = true
			if e.res < 0 {
				s.fail(fd, c)
			}
		}
		s.maybeClose(fd, c)

	case kindSend:
		c := s.conns[fd]
		c.sending = false
		p := &c.q[0]
		if e.res <= 0 {
			s.br.put(p.bid)
			c.q = c.q[:copy(c.q, c.q[1:])]
			s.fail(fd, c)
			return
		}
		p.off += uint32(e.res)
		p.n -= uint32(e.res)
		if p.n == 0 {
			s.br.put(p.bid)
			c.q = c.q[:copy(c.q, c.q[1:])]
		}
		if len(c.q) > 0 {
			s.sendHead(fd, c)
		}
		s.maybeClose(fd, c)
	}
}

// afterBatch re-arms recv on connections that ran out of buffers, once some are back.
func (s *server) afterBatch() {
	if len(s.starved) == 0 || s.br.nfree == 0 {
		return
	}
	for _, fd := range s.starved {
		if c := s.conns[fd]; c != nil && c.starved {
			c.starved = false
			if !c.closing {
				s.armRecv(fd, c)
			}
		}
	}
	s.starved = s.starved[:0]
}

func (s *server) loopBlock() error {
	for {
		if err := s.r.enter(s.r.pending(), 1, enterGetEvents); err != nil {
			return err
		}
		s.r.reap(s.handle)
		s.afterBatch()
	}
}

func (s *server) loopNetpoll() error {
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return err
	}
	e32 := int32(efd)
	if err := s.r.register(regEventfd, unsafe.Pointer(&e32), 1); err != nil {
		return err
	}
	f := os.NewFile(uintptr(efd), "uring-eventfd") // non-blocking fd: registered with the netpoller
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var loopErr error
	var buf [8]byte
	err = rc.Read(func(fd uintptr) bool {
		unix.Read(int(fd), buf[:]) // drain; EAGAIN is fine
		for {
			n := s.r.reap(s.handle)
			s.afterBatch()
			over := s.r.overflowed()
			if s.r.pending() > 0 || over {
				var flags uint32
				if over {
					flags = enterGetEvents // flush the kernel's CQ overflow list
				}
				if loopErr = s.r.submit(flags); loopErr != nil {
					return true
				}
				continue // inline completions (e.g. loopback sends) are usually ready now
			}
			if n == 0 {
				return false // CQ empty, nothing to submit: park in the netpoller
			}
		}
	})
	if loopErr != nil {
		return loopErr
	}
	return err
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	wait := flag.String("wait", "block", "block (io_uring_enter GETEVENTS) or netpoll (eventfd in Go's netpoller)")
	nbufs := flag.Int("bufs", 512, "provided buffers (power of two)")
	bufSize := flag.Int("bufsize", 4096, "bytes per provided buffer")
	entries := flag.Uint("entries", 1024, "SQ entries (CQ gets 8x)")
	setup := flag.String("setup", "", "extra ring setup: coop (COOP_TASKRUN|TASKRUN_FLAG) or defer (SINGLE_ISSUER|DEFER_TASKRUN, thread locked)")
	flag.Parse()
	switch *setup {
	case "coop":
		extraSetup = 1<<8 | 1<<9
	case "defer":
		runtime.LockOSThread()
		extraSetup = 1<<12 | 1<<13
	}

	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	// Take our own dup of the listening socket and close Go's copy, so the Go
	// netpoller no longer watches it (accept readiness would wake it for nothing).
	var lfd int
	rc, _ := l.(*net.TCPListener).SyscallConn()
	rc.Control(func(fd uintptr) { lfd, err = unix.Dup(int(fd)) })
	if err != nil {
		log.Fatal(err)
	}
	l.Close()
	// Accepted sockets inherit TCP_NODELAY from the listener on Linux.
	if err := unix.SetsockoptInt(lfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		log.Fatal(err)
	}

	// A datagram echo on the same port, served by a goroutine in Go's
	// netpoller, to see whether it waits for a loop that blocks in
	// io_uring_enter (udpprobe.py).
	uc, err := net.ListenPacket("udp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		b := make([]byte, 2048)
		for {
			n, a, err := uc.ReadFrom(b)
			if err != nil {
				return
			}
			uc.WriteTo(bytes.ToUpper(b[:n]), a)
		}
	}()
	r, err := newRing(uint32(*entries), uint32(*entries)*8)
	if err != nil {
		log.Fatal(err)
	}
	br, err := newBufRing(r, bgid, *nbufs, *bufSize)
	if err != nil {
		log.Fatal(err)
	}
	s := &server{r: r, br: br, lfd: lfd}
	s.armAccept()
	log.Printf("listening on %s, wait=%s", *addr, *wait)
	switch *wait {
	case "block":
		err = s.loopBlock()
	case "netpoll":
		err = s.loopNetpoll()
	default:
		log.Fatalf("unknown -wait %q", *wait)
	}
	log.Fatal(err)
}
