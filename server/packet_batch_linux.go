package server

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"
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
//
// Replies of a batch to one client, from one address, of one size (the
// last may be shorter), go in one message that the kernel cuts into
// datagrams (UDP_SEGMENT, generic segmentation offload): the client reads
// them as before, one datagram each (unless it asked for them whole,
// UDP_GRO), but the way out through the kernel is made once for all of
// them. On loopback that way is most of a reply's cost: BenchmarkReplies.

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
	// not fit, those before it are sent first. nq replies are queued, in
	// the order of their datagrams: each one's bytes, the datagram it
	// answers, and the address it is sent from if that is chosen
	// (pktinfo).
	out   []byte
	off   int
	qiov  [batchLen]unix.Iovec
	qslot [batchLen]int
	qfrom [batchLen]netip.Addr
	qif   [batchLen]uint32
	nq    int
	all   [batchLen]int // 0, 1, 2…: every queued reply, for pack
	rest  [batchLen]int // those left to pack again after a refusal

	// The messages that carry them (pack), nw of them: message m carries
	// the replies wiov[wend[m-1]:wend[m]], which are the queued ones wq
	// holds at the same places.
	w    [batchLen]unix.Mmsghdr
	wiov [batchLen]unix.Iovec
	wq   [batchLen]int
	wend [batchLen]int
	cm   []byte // batchLen × cmSpace: each message's control messages
	nw   int

	// gso says whether the socket takes UDP_SEGMENT, until a send with
	// it fails for want of it; gsoMax is the largest reply it cuts, less
	// once a larger one did not fit the way out.
	gso    bool
	gsoMax int

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
		cm:         make([]byte, batchLen*cmSpace),
		gsoMax:     gsoMaxBytes,
	}
	if p.pktinfo {
		w.oob = make([]byte, batchLen*pktinfoSpace)
	}
	rc.Control(func(fd uintptr) {
		// Linux 4.18 has the option, but only 5.0 cuts a message that
		// loopback hands to a socket that did not ask for it whole
		// (UDP_GRO); and the kernel cuts only what has a checksum.
		_, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
		nocheck, _ := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK)
		w.gso = err == nil && nocheck == 0 && kernelAtLeast(5, 0)
	})
	for i := range batchLen {
		w.all[i] = i
		w.riov[i].Base = &w.in[i*maxDatagram]
		w.riov[i].SetLen(maxDatagram)
		h := &w.r[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&w.names[i]))
		h.Iov = &w.riov[i]
		h.SetIovlen(1)
		if w.oob != nil {
			h.Control = &w.oob[i*pktinfoSpace]
		}
	}
	w.readF, w.writeF = w.recvmmsg, w.sendmmsg
	return w
}

// serve reads and answers until the socket fails or is closed, then
// unmaps the worker's buffers.
func (w *batchWorker) serve() error {
	defer w.unmap()
	var delay time.Duration // after reads that failed
	for {
		n, err := w.read()
		if err != nil {
			if err := w.readError(err, &delay); err != nil {
				return err
			}
			continue
		}
		delay = 0
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
	q := w.nq
	w.qslot[q], w.qfrom[q], w.qif[q] = i, from, ifindex
	if len(reply) > 0 {
		w.qiov[q].Base = &reply[0]
	} else {
		w.qiov[q].Base = nil
	}
	w.qiov[q].SetLen(len(reply))
	w.nq++
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
	w.done, w.off, w.nq, w.nw = upto, 0, 0, 0
}

// send sends the replies queued. sendmmsg stops at the first message
// that fails and says why only when that one is first, so a failure
// costs a call of its own; the others are still sent.
//
// A message of several replies may fail because the kernel will not cut
// it, or because the way to its client takes no datagram (a blackhole
// route) or none that large. Its replies, and the rest of the batch, are
// then packed again uncut and sent; the first of them, sent alone, tells
// which it was, and only if it goes does the worker cut less (refused).
func (w *batchWorker) send() {
	if w.nq == 0 {
		return
	}
	w.pack(w.all[:w.nq])
	probe, probeErr, probeSize := -1, unix.Errno(0), 0
	gso := w.gso
	for w.first = 0; w.first < w.nw; {
		err := w.rc.Write(w.writeF)
		if err == nil && w.errno == 0 && w.n > 0 {
			w.first += w.n
			continue
		}
		lo, hi := w.span(w.first)
		if err == nil && hi-lo > 1 && probe < 0 && cutRefusal(w.errno) {
			probe, probeErr, probeSize = w.wq[lo], w.errno, int(w.wiov[lo].Len)
			w.gso = false                                             // for the rest of this batch
			rest := w.rest[:copy(w.rest[:], w.wq[lo:w.wend[w.nw-1]])] // pack writes wq
			slices.Sort(rest)                                         // back in the order of their datagrams
			w.pack(rest)
			w.first = 0
			continue
		}
		if err != nil {
			hi = w.wend[w.nw-1] // the socket is closed: all of them
			w.first = w.nw
		} else {
			err = &net.OpError{Op: "write", Net: w.pc.LocalAddr().Network(), Source: w.pc.LocalAddr(), Err: os.NewSyscallError("sendmmsg", w.errno)}
			w.first++
		}
		r := w.unsent(err)
		for _, q := range w.wq[lo:hi] {
			d := &w.ds[w.qslot[q]]
			d.Reason, d.Err = r, err
		}
	}
	if probe >= 0 {
		w.gso = gso
		if w.ds[w.qslot[probe]].Reason == ReasonNone {
			w.refused(probeErr, probeSize) // it went uncut: the cutting was refused
		}
	}
}

// cutRefusal reports whether errno, from a message of several replies,
// may mean that it was refused for being cut.
func cutRefusal(errno unix.Errno) bool {
	switch errno {
	case unix.EIO, unix.ENOPROTOOPT, unix.EOPNOTSUPP, unix.EINVAL, unix.EMSGSIZE:
		return true
	}
	return false
}

// kernelAtLeast reports whether the running kernel is Linux major.minor
// or later.
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var ma, mi int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// gsoMaxBytes is the most a message of several replies carries: the
// largest UDP payload over IPv4.
const gsoMaxBytes = 65507

// batchLen is within what the kernel cuts one message into: 64
// datagrams (UDP_MAX_SEGMENTS, 128 since Linux 6.9).
const _ = uint(64 - batchLen)

// cmSpace is room for a message's control messages: the address to send
// from, and the size to cut its datagrams to.
var cmSpace = pktinfoSpace + unix.CmsgSpace(2)

// pack puts the queued replies list names (in the order of their
// datagrams) into messages: a reply joins the last message to its client
// if segmentation offload is on, that message is sent from the same
// address, its replies are all of this one's size, and it has room. So
// the replies to one client keep their order; only those to different
// clients may pass each other.
func (w *batchWorker) pack(list []int) {
	var (
		size [batchLen]int  // the size of message m's first reply: what its datagrams are cut to
		sum  [batchLen]int  // the bytes it carries
		open [batchLen]bool // whether more may join it
		n    [batchLen]int  // its replies
		of   [batchLen]int  // the message of list[i]
	)
	nm := 0
	for i, q := range list {
		r := int(w.qiov[q].Len)
		cut := w.gso && r > 0 && r <= w.gsoMax
		m := -1
		if cut {
			for k := nm - 1; k >= 0; k-- {
				if k0 := w.wq[k]; w.sameClient(k0, q) {
					if open[k] && r <= size[k] && sum[k]+r <= gsoMaxBytes && w.qfrom[k0] == w.qfrom[q] && w.qif[k0] == w.qif[q] {
						m = k
					}
					break
				}
			}
		}
		if m < 0 {
			m, nm = nm, nm+1
			w.wq[m] = q // its first, for the search above, until the layout below
			size[m], sum[m], n[m], open[m] = r, 0, 0, cut
		}
		open[m] = open[m] && r == size[m] // a shorter reply ends it
		sum[m] += r
		n[m]++
		of[i] = m
	}
	var at [batchLen]int // where each message's next reply goes
	end := 0
	for m := range nm {
		at[m] = end
		end += n[m]
		w.wend[m] = end
	}
	for i, q := range list {
		m := of[i]
		w.wiov[at[m]], w.wq[at[m]] = w.qiov[q], q
		at[m]++
	}
	for m := range nm {
		lo, hi := w.span(m)
		q := w.wq[lo]
		h := &w.w[m].Hdr
		h.Iov = &w.wiov[lo]
		h.SetIovlen(hi - lo)
		src := &w.r[w.qslot[q]].Hdr
		h.Name, h.Namelen = src.Name, src.Namelen
		b := w.cm[m*cmSpace:][:cmSpace]
		c := 0
		if w.pktinfo {
			c = len(pktinfoFrom(b[:pktinfoSpace], w.v6, w.qfrom[q], w.qif[q]))
		}
		if hi-lo > 1 {
			c += segmentSize(b[c:], size[m])
		}
		h.Control = nil
		if c > 0 {
			h.Control = &b[0]
		}
		h.SetControllen(c)
	}
	w.nw = nm
}

// span is where message m's replies are in wiov and wq.
func (w *batchWorker) span(m int) (lo, hi int) {
	if m > 0 {
		lo = w.wend[m-1]
	}
	return lo, w.wend[m]
}

// sameClient reports whether queued replies a and b go to the same
// client.
func (w *batchWorker) sameClient(a, b int) bool {
	ha, hb := &w.r[w.qslot[a]].Hdr, &w.r[w.qslot[b]].Hdr
	if ha.Namelen != hb.Namelen {
		return false
	}
	na := unsafe.Slice(ha.Name, ha.Namelen)
	nb := unsafe.Slice(hb.Name, hb.Namelen)
	return string(na) == string(nb)
}

// segmentSize writes the control message that has the kernel cut a
// message into datagrams of size bytes over b, and returns its length.
func segmentSize(b []byte, size int) int {
	n := unix.CmsgSpace(2)
	clear(b[:n])
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.IPPROTO_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[unix.CmsgLen(0):], uint16(size))
	return n
}

// refused is told that a message of several replies, each of size
// bytes, was refused with errno for being cut, and cuts no more of that
// kind: nothing where the kernel cannot (no checksum offload on the way
// out, IPsec), nothing as large where a way out takes no datagram that
// size cut from a larger one. It says so at info level, at most once a
// second, with a running total: the replies still go, but each costs the
// server more.
func (w *batchWorker) refused(errno unix.Errno, size int) {
	attrs := []any{"local", w.pc.LocalAddr().String(), "err", os.NewSyscallError("sendmmsg", errno)}
	msg := "datagram replies no longer cut"
	switch errno {
	case unix.EINVAL, unix.EMSGSIZE:
		w.gsoMax = min(w.gsoMax, size-1)
		msg = "datagram replies cut only up to a smaller size"
		attrs = append(attrs, "largest_cut", w.gsoMax)
	default:
		w.gso = false
	}
	if ok, n := w.cutLess.allow(); ok {
		w.s.logger().Info(msg, append(attrs, "total", n)...)
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
