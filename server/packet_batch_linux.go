package server

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On Linux a datagram worker reads up to batchLen datagrams with one
// recvmmsg and sends their replies with one sendmmsg, instead of a
// recvfrom and a sendto for each: under load most of a datagram's cost is
// its system calls.
//
// x/net's ipv4 and ipv6 PacketConn.ReadBatch and WriteBatch make the same
// calls, but return each datagram's source as a new net.UDPAddr (two
// allocations a datagram) and take each reply's destination as one; this
// worker keeps the kernel's sockaddrs, answers to them as they are, and
// allocates nothing once it is made.

// batchLen is how many datagrams one system call reads or writes at most.
// Each needs a buffer for the largest datagram, since recvmmsg cannot
// tell a datagram's size before it fills one: 16 of them make 1 MiB per
// worker. They are mapped outside the Go heap, which would zero them all
// at once, so that only the pages datagrams have reached are resident:
// 16 pages, 64 KiB, while datagrams are small.
const batchLen = 16

// batchWorker is one worker's batch: the buffers and message headers of
// its reads and replies, made once and reused.
type batchWorker struct {
	*packetConn
	rc syscall.RawConn

	in    []byte // batchLen buffers of maxDatagram, mapped (unmap when done)
	r     [batchLen]unix.Mmsghdr
	riov  [batchLen]unix.Iovec
	names [batchLen]unix.RawSockaddrInet6 // sources, and the replies' destinations
	oob   []byte                          // batchLen × pktinfoSpace: control messages read (pktinfo)

	// out holds a batch's replies one after another; when the next does
	// not fit, those before it are sent first.
	out  []byte
	off  int
	w    [batchLen]unix.Mmsghdr // replies to send, nw of them
	wiov [batchLen]unix.Iovec
	cm   []byte        // batchLen × pktinfoSpace: control messages to write (pktinfo)
	slot [batchLen]int // the datagram each reply answers
	nw   int

	ds      [batchLen]DatagramInfo
	replies [batchLen][]byte // for the tracer
	done    int              // datagrams of the batch reported to the observer

	// The result of the last system call, and the functions that make it,
	// bound once so that a call allocates no closure.
	n, first      int
	errno         unix.Errno
	readF, writeF func(uintptr) bool

	zoneIndex uint32 // the last IPv6 scope seen, and its name
	zoneName  string
}

// newBatchWorker returns a worker for p, or nil if p cannot be read in
// batches (it is not a *net.UDPConn).
func (p *packetConn) newBatchWorker() *batchWorker {
	if p.udp == nil {
		return nil
	}
	rc, err := p.udp.SyscallConn()
	if err != nil {
		return nil
	}
	in, err := unix.Mmap(-1, 0, batchLen*maxDatagram, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil
	}
	w := &batchWorker{
		packetConn: p,
		rc:         rc,
		in:         in,
		out:        make([]byte, maxDatagram),
	}
	if p.pktinfo {
		w.oob, w.cm = make([]byte, batchLen*pktinfoSpace), make([]byte, batchLen*pktinfoSpace)
	}
	for i := range batchLen {
		w.riov[i].Base = &w.in[i*maxDatagram]
		w.riov[i].SetLen(maxDatagram)
		h := &w.r[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&w.names[i]))
		h.Iov = &w.riov[i]
		h.SetIovlen(1)
		if w.oob != nil {
			h.Control = &w.oob[i*pktinfoSpace]
		}
		w.w[i].Hdr.Iov = &w.wiov[i]
		w.w[i].Hdr.SetIovlen(1)
	}
	w.readF, w.writeF = w.recvmmsg, w.sendmmsg
	return w
}

// serve reads and answers until the socket fails or is closed, then
// unmaps the worker's buffers.
func (w *batchWorker) serve() error {
	defer w.unmap()
	for {
		n, err := w.read()
		if err != nil {
			if err := w.readError(err); err != nil {
				return err
			}
			continue
		}
		w.handle(n)
	}
}

// unmap gives back the read buffers: no datagram of w's may be used after.
func (w *batchWorker) unmap() {
	unix.Munmap(w.in)
	w.in = nil
}

// read reads a batch of at least one datagram, waiting for the first.
func (w *batchWorker) read() (int, error) {
	for i := range batchLen {
		h := &w.r[i].Hdr
		h.Namelen = unix.SizeofSockaddrInet6
		if w.oob != nil {
			h.SetControllen(pktinfoSpace)
		}
		h.Flags = 0
	}
	if err := w.rc.Read(w.readF); err != nil {
		return 0, err
	}
	if w.errno != 0 {
		return 0, &net.OpError{Op: "read", Net: w.pc.LocalAddr().Network(), Addr: w.pc.LocalAddr(), Err: os.NewSyscallError("recvmmsg", w.errno)}
	}
	return w.n, nil
}

// recvmmsg is read's callback. It makes its call raw: the socket is
// non-blocking, so the call never sleeps, and telling the scheduler of it
// only costs (see rawsys_linux.go); so does sendmmsg.
func (w *batchWorker) recvmmsg(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&w.r[0])), batchLen, 0, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait until the socket is readable
		}
		w.n, w.errno = int(n), e
		return true
	}
}

// handle answers the n datagrams just read, in order, and tells the
// tracer and the observer of each.
func (w *batchWorker) handle(n int) {
	w.off, w.nw, w.done = 0, 0, 0
	for i := range n {
		h := &w.r[i].Hdr
		local := w.local
		var (
			from    netip.Addr
			ifindex uint32
		)
		if w.pktinfo {
			var dst netip.Addr
			dst, from, ifindex = parsePktinfo(w.oob[i*pktinfoSpace:][:h.Controllen], int(h.Flags))
			if dst.IsValid() {
				local = netip.AddrPortFrom(dst, local.Port())
			}
		}
		d := &w.ds[i]
		*d = DatagramInfo{Remote: w.source(i), Local: local, Data: w.in[i*maxDatagram:][:w.r[i].Len]}
		w.replies[i] = w.out[:0]
		if w.trace != nil {
			w.trace.Recvfrom(d)
		}
		w.answer(i, from, ifindex)
	}
	w.finish(n)
}

// answer decides whether datagram i deserves a reply and, if so, queues
// one, from address from if it is valid (pktinfo).
func (w *batchWorker) answer(i int, from netip.Addr, ifindex uint32) {
	d := &w.ds[i]
	v, ok := w.admit(d)
	if !ok {
		return
	}
	reply, ok := w.transform(d, w.out[w.off:])
	if !ok && d.Reason == ReasonTooLarge && w.off > 0 {
		// Too large for what the batch's earlier replies left: send
		// those, and try again with all of out.
		w.finish(i)
		d.Reason = ReasonNone
		reply, ok = w.transform(d, w.out)
	}
	w.replies[i] = w.out[w.off:][:d.BytesOut]
	if !ok {
		return
	}
	w.off += len(reply) // kept for the tracer even if it is not sent
	if !w.charge(d, v, reply) {
		return
	}
	m := &w.w[w.nw]
	w.slot[w.nw] = i
	if len(reply) > 0 {
		w.wiov[w.nw].Base = &reply[0]
	} else {
		w.wiov[w.nw].Base = nil
	}
	w.wiov[w.nw].SetLen(len(reply))
	m.Hdr.Name, m.Hdr.Namelen = w.r[i].Hdr.Name, w.r[i].Hdr.Namelen
	m.Hdr.Control = nil
	m.Hdr.SetControllen(0)
	if w.pktinfo {
		if cm := pktinfoFrom(w.cm[w.nw*pktinfoSpace:][:pktinfoSpace], w.v6, from, ifindex); cm != nil {
			m.Hdr.Control = &cm[0]
			m.Hdr.SetControllen(len(cm))
		}
	}
	w.nw++
}

// finish sends the replies queued, then tells the tracer and the
// observer of the datagrams before upto not yet reported, and empties
// out for the next.
func (w *batchWorker) finish(upto int) {
	w.send()
	for i := w.done; i < upto; i++ {
		d := &w.ds[i]
		if w.trace != nil {
			w.trace.Sendto(d, w.replies[i])
		}
		w.obs.Datagram(d)
	}
	w.done, w.off, w.nw = upto, 0, 0
}

// send sends the replies queued. sendmmsg stops at the first that fails
// and says why only when that one is first, so a failure costs a call of
// its own; the others are still sent.
func (w *batchWorker) send() {
	for w.first = 0; w.first < w.nw; {
		err := w.rc.Write(w.writeF)
		if err == nil && w.errno == 0 && w.n > 0 {
			w.first += w.n
			continue
		}
		last := w.first + 1 // only this one failed
		if err != nil {
			last = w.nw // the socket is closed: all of them
		} else {
			err = &net.OpError{Op: "write", Net: w.pc.LocalAddr().Network(), Source: w.pc.LocalAddr(), Err: os.NewSyscallError("sendmmsg", w.errno)}
		}
		if !w.s.closing.Load() {
			for j := w.first; j < last; j++ {
				d := &w.ds[w.slot[j]]
				d.Reason, d.Err = ReasonSendFailed, err
			}
		}
		w.first = last
	}
}

func (w *batchWorker) sendmmsg(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.w[w.first])), uintptr(w.nw-w.first), 0, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait until the socket is writable
		}
		w.n, w.errno = int(n), e
		return true
	}
}

// source returns where datagram i came from.
func (w *batchWorker) source(i int) netip.AddrPort {
	sa := &w.names[i]
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port(sa4.Port))
	case unix.AF_INET6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			a = a.WithZone(w.zone(sa.Scope_id))
		}
		return netip.AddrPortFrom(a, port(sa.Port))
	}
	return netip.AddrPort{}
}

// port is a sockaddr's port, which is in network byte order.
func port(p uint16) uint16 {
	return binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p))[:])
}

// zone names IPv6 scope index, as the net package does, remembering the
// last so that a link-local source costs no allocation each datagram.
func (w *batchWorker) zone(index uint32) string {
	if index != w.zoneIndex || w.zoneName == "" {
		w.zoneIndex, w.zoneName = index, strconv.FormatUint(uint64(index), 10)
		if ifi, err := net.InterfaceByIndex(int(index)); err == nil {
			w.zoneName = ifi.Name
		}
	}
	return w.zoneName
}
