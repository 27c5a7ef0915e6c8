//go:build linux

// Minimal io_uring plumbing: ABI structs, setup, mmap'd rings, provided buffer ring.
package main

import (
	"fmt"
	"log"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Constants from include/uapi/linux/io_uring.h.
const (
	opSend   = 26 // IORING_OP_SEND
	opRecv   = 27 // IORING_OP_RECV
	opAccept = 13 // IORING_OP_ACCEPT

	sqeBufferSelect = 1 << 5 // IOSQE_BUFFER_SELECT

	acceptMultishot = 1 << 0 // IORING_ACCEPT_MULTISHOT (sqe.ioprio)
	recvMultishot   = 1 << 1 // IORING_RECV_MULTISHOT (sqe.ioprio)

	cqeFBuffer  = 1 << 0 // IORING_CQE_F_BUFFER
	cqeFMore    = 1 << 1 // IORING_CQE_F_MORE
	cqeBufShift = 16     // IORING_CQE_BUFFER_SHIFT

	setupCQSize = 1 << 3 // IORING_SETUP_CQSIZE

	featSingleMmap = 1 << 0 // IORING_FEAT_SINGLE_MMAP
	featNoDrop     = 1 << 1 // IORING_FEAT_NODROP

	sqCQOverflow = 1 << 1 // IORING_SQ_CQ_OVERFLOW (sq ring flags)
	sqTaskrun    = 1 << 2 // IORING_SQ_TASKRUN: completion work waits for an io_uring_enter (setup coop)

	enterGetEvents = 1 << 0 // IORING_ENTER_GETEVENTS

	offSQRing = 0          // IORING_OFF_SQ_RING
	offSQEs   = 0x10000000 // IORING_OFF_SQES

	regEventfd = 4  // IORING_REGISTER_EVENTFD
	regPbuf    = 22 // IORING_REGISTER_PBUF_RING
)

type sqOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqOffsets
	cqOff                                                                  cqOffsets
}

type sqe struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	opFlags     uint32 // msg_flags, accept_flags, ...
	userData    uint64
	bufGroup    uint16 // buf_index / buf_group
	personality uint16
	spliceFdIn  int32
	addr3       uint64
	_           uint64
}

type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

type bufReg struct { // struct io_uring_buf_reg
	ringAddr    uint64
	ringEntries uint32
	bgid        uint16
	flags       uint16
	resv        [3]uint64
}

type bufEntry struct { // struct io_uring_buf; entry 0's resv is the ring tail
	addr uint64
	len  uint32
	bid  uint16
	resv uint16
}

// Compile-time ABI size checks.
var (
	_ [120]byte = [unsafe.Sizeof(params{})]byte{}
	_ [64]byte  = [unsafe.Sizeof(sqe{})]byte{}
	_ [16]byte  = [unsafe.Sizeof(cqe{})]byte{}
	_ [40]byte  = [unsafe.Sizeof(bufReg{})]byte{}
	_ [16]byte  = [unsafe.Sizeof(bufEntry{})]byte{}
)

type ring struct {
	fd      int
	ringMem []byte // SQ and CQ rings (single mmap)
	sqeMem  []byte

	sqHead, sqTail, sqFlags *uint32
	sqMask, sqEntries       uint32
	sqes                    []sqe
	tail                    uint32 // local SQ tail, published on submit

	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           []cqe
}

func u32(mem []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }

var extraSetup uint32

func newRing(entries, cqEntries uint32) (*ring, error) {
	p := params{flags: setupCQSize | extraSetup, cqEntries: cqEntries}
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	if p.features&featSingleMmap == 0 || p.features&featNoDrop == 0 {
		return nil, fmt.Errorf("kernel lacks IORING_FEAT_SINGLE_MMAP/NODROP (features %#x)", p.features)
	}
	r := &ring{fd: int(fd)}
	size := max(p.sqOff.array+p.sqEntries*4, p.cqOff.cqes+p.cqEntries*uint32(unsafe.Sizeof(cqe{})))
	var err error
	r.ringMem, err = unix.Mmap(r.fd, offSQRing, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap rings: %w", err)
	}
	r.sqeMem, err = unix.Mmap(r.fd, offSQEs, int(p.sqEntries)*64, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap sqes: %w", err)
	}
	m := r.ringMem
	r.sqHead, r.sqTail, r.sqFlags = u32(m, p.sqOff.head), u32(m, p.sqOff.tail), u32(m, p.sqOff.flags)
	r.sqMask, r.sqEntries = *u32(m, p.sqOff.ringMask), p.sqEntries
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&r.sqeMem[0])), p.sqEntries)
	arr := unsafe.Slice(u32(m, p.sqOff.array), p.sqEntries)
	for i := range arr { // identity mapping: SQ slot i uses SQE i
		arr[i] = uint32(i)
	}
	r.tail = atomic.LoadUint32(r.sqTail)
	r.cqHead, r.cqTail = u32(m, p.cqOff.head), u32(m, p.cqOff.tail)
	r.cqMask = *u32(m, p.cqOff.ringMask)
	r.cqes = unsafe.Slice((*cqe)(unsafe.Pointer(&m[p.cqOff.cqes])), p.cqEntries)
	return r, nil
}

// enter calls io_uring_enter, retrying on EINTR.
func (r *ring) enter(toSubmit, minComplete, flags uint32) error {
	for {
		_, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit), uintptr(minComplete), uintptr(flags), 0, 0)
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		case unix.EAGAIN, unix.EBUSY: // CQ overflow backlog: caller reaps and retries
			return nil
		}
		return fmt.Errorf("io_uring_enter: %w", errno)
	}
}

func (r *ring) register(op uintptr, arg unsafe.Pointer, nr uintptr) error {
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), op, uintptr(arg), nr, 0, 0)
	if errno != 0 {
		return fmt.Errorf("io_uring_register(%d): %w", op, errno)
	}
	return nil
}

// pending is the number of SQEs written but not yet consumed by the kernel.
func (r *ring) pending() uint32 { return r.tail - atomic.LoadUint32(r.sqHead) }

// overflowed reports completions held back in the kernel, in its overflow
// list or, with setup coop, as work not yet run: GETEVENTS brings them.
func (r *ring) overflowed() bool {
	return atomic.LoadUint32(r.sqFlags)&(sqCQOverflow|sqTaskrun) != 0
}

// getSQE returns a zeroed SQE, submitting first if the SQ is full.
func (r *ring) getSQE() *sqe {
	for r.pending() >= r.sqEntries {
		atomic.StoreUint32(r.sqTail, r.tail)
		if err := r.enter(r.pending(), 0, 0); err != nil {
			log.Fatalf("submission queue full: %v", err) // EBUSY: a prototype does not handle it
		}
	}
	s := &r.sqes[r.tail&r.sqMask]
	*s = sqe{}
	r.tail++
	atomic.StoreUint32(r.sqTail, r.tail) // publish (kernel reads it only in io_uring_enter)
	return s
}

// submit hands all pending SQEs to the kernel without waiting.
func (r *ring) submit(flags uint32) error { return r.enter(r.pending(), 0, flags) }

// reap calls fn for every available CQE and returns how many it handled.
func (r *ring) reap(fn func(*cqe)) int {
	n := 0
	head := atomic.LoadUint32(r.cqHead)
	for {
		tail := atomic.LoadUint32(r.cqTail)
		if head == tail {
			return n
		}
		for ; head != tail; head++ {
			c := r.cqes[head&r.cqMask] // copy, so the slot can be released
			atomic.StoreUint32(r.cqHead, head+1)
			fn(&c)
			n++
		}
	}
}

// bufRing is a provided-buffer ring (IORING_REGISTER_PBUF_RING) with its buffers.
type bufRing struct {
	ents    []bufEntry
	tailP   *uint32 // 32-bit word holding entry 0's bid (low half) and the ring tail (high half)
	mask    uint16
	tail    uint16
	mem     []byte
	size    int
	nfree   int // buffers currently owned by the kernel
	entries int
}

func newBufRing(r *ring, bgid uint16, n, size int) (*bufRing, error) {
	ringMem, err := unix.Mmap(-1, 0, n*16, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANONYMOUS|unix.MAP_PRIVATE|unix.MAP_POPULATE)
	if err != nil {
		return nil, err
	}
	mem, err := unix.Mmap(-1, 0, n*size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANONYMOUS|unix.MAP_PRIVATE|unix.MAP_POPULATE)
	if err != nil {
		return nil, err
	}
	reg := bufReg{ringAddr: uint64(uintptr(unsafe.Pointer(&ringMem[0]))), ringEntries: uint32(n), bgid: bgid}
	if err := r.register(regPbuf, unsafe.Pointer(&reg), 1); err != nil {
		return nil, err
	}
	b := &bufRing{
		ents:  unsafe.Slice((*bufEntry)(unsafe.Pointer(&ringMem[0])), n),
		tailP: u32(ringMem, 12), mask: uint16(n - 1), mem: mem, size: size, entries: n,
	}
	for i := range n {
		b.put(uint16(i))
	}
	return b, nil
}

func (b *bufRing) buf(bid uint16) []byte { return b.mem[int(bid)*b.size : (int(bid)+1)*b.size] }

// put returns buffer bid to the kernel and publishes the new tail.
func (b *bufRing) put(bid uint16) {
	e := &b.ents[b.tail&b.mask]
	e.addr = uint64(uintptr(unsafe.Pointer(&b.buf(bid)[0])))
	e.len = uint32(b.size)
	e.bid = bid
	b.tail++
	// No 16-bit atomics in sync/atomic: store the word holding entry 0's bid and the tail.
	v := atomic.LoadUint32(b.tailP)
	atomic.StoreUint32(b.tailP, v&0xffff|uint32(b.tail)<<16)
	b.nfree++
}
