package shouttest

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// An impairing relay stands between a client and a server on loopback,
// as a faulty network path would: netem is not everywhere (no sch_netem
// here), and a test must run where it is not. It forwards what each side
// sends, changed as the test asks: datagrams dropped, doubled, held back,
// cut, altered or sent from another port; stream bytes cut into small
// writes, held up, throttled, stalled, or the connection reset, closed or
// half-closed after so many bytes. Memory is bounded: a stream relay
// holds one read of each direction, a datagram relay at most
// maxHeldDatagrams held back.

// Packet is one datagram a UDP relay sends on, After from when the one
// it comes of arrived; Aside sends it to the client from another socket
// of the relay's (another source port), which a client's connected
// socket should never take for the server's.
type Packet struct {
	Data  []byte
	After time.Duration
	Aside bool
}

// ToServer and ToClient are the directions a relay forwards.
const (
	ToServer = iota
	ToClient
)

// maxHeldDatagrams bounds the datagrams a UDP relay holds back (After):
// past it, the rest are dropped.
const maxHeldDatagrams = 4096

// UDPRelay relays datagrams between clients and the UDP server at
// server, each client (address) through a socket of its own, as a NAT
// does. For the n-th datagram of a direction (from 0, across clients),
// path returns what to send on in its place: nothing drops it, two
// doubles it. path may be called from several goroutines at once, and
// owns b. It stops when the test ends and returns its address.
func UDPRelay(t testing.TB, server string, path func(dir, n int, b []byte) []Packet) string {
	t.Helper()
	r, err := newUDPRelay(server, path)
	if err != nil {
		t.Fatal(err)
	}
	r.wg.Go(r.fromClients)
	t.Cleanup(r.close)
	return r.pc.LocalAddr().String()
}

// newUDPRelay is a UDP relay on loopback, not relaying yet.
func newUDPRelay(server string, path func(dir, n int, b []byte) []Packet) (*udpRelay, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	aside, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		pc.Close()
		return nil, err
	}
	return &udpRelay{pc: pc, aside: aside, server: server, path: path, ups: map[string]net.Conn{}, held: map[*time.Timer]bool{}}, nil
}

type udpRelay struct {
	pc, aside net.PacketConn
	server    string
	path      func(dir, n int, b []byte) []Packet
	wg        sync.WaitGroup

	mu     sync.Mutex
	ups    map[string]net.Conn // each client's socket to the server
	counts [2]int
	held   map[*time.Timer]bool // the timers of datagrams held back (After)
	closed bool
}

func (r *udpRelay) close() {
	r.mu.Lock()
	r.closed = true
	for t := range r.held {
		t.Stop() // (one that fired already finds itself gone, and sends nothing)
	}
	clear(r.held)
	for _, c := range r.ups {
		c.Close()
	}
	r.mu.Unlock()
	r.pc.Close()
	r.aside.Close()
	r.wg.Wait()
}

// impair hands b to path as the next datagram of dir and sends what it
// returns with send.
func (r *udpRelay) impair(dir int, b []byte, send func(Packet)) {
	r.mu.Lock()
	n := r.counts[dir]
	r.counts[dir]++
	r.mu.Unlock()
	for _, p := range r.path(dir, n, b) {
		if p.After <= 0 {
			send(p)
			continue
		}
		r.mu.Lock()
		if r.closed || len(r.held) >= maxHeldDatagrams {
			r.mu.Unlock()
			continue
		}
		var t *time.Timer
		t = time.AfterFunc(p.After, func() {
			r.mu.Lock()
			due := r.held[t] // else close stopped it as it fired
			delete(r.held, t)
			r.mu.Unlock()
			if due {
				send(p)
			}
		})
		r.held[t] = true
		r.mu.Unlock()
	}
}

func (r *udpRelay) fromClients() {
	buf := make([]byte, 1<<16)
	for {
		k, from, err := r.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		up, err := r.upstream(from)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // the datagram is lost, as a NAT out of ports loses it
		}
		r.impair(ToServer, append([]byte(nil), buf[:k]...), func(p Packet) { up.Write(p.Data) })
	}
}

// upstream is the socket to the server of the client at from, made, with
// a goroutine relaying its replies, on its first datagram; the error is
// net.ErrClosed once the relay is closed.
func (r *udpRelay) upstream(from net.Addr) (net.Conn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, net.ErrClosed
	}
	if up, ok := r.ups[from.String()]; ok {
		return up, nil
	}
	up, err := net.Dial("udp", r.server)
	if err != nil {
		return nil, err
	}
	r.ups[from.String()] = up
	r.wg.Go(func() {
		buf := make([]byte, 1<<16)
		for {
			k, err := up.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && !ne.Timeout() && !errors.Is(err, net.ErrClosed) {
					continue // a refusal (ICMP) from the server: the path goes on
				}
				return
			}
			r.impair(ToClient, append([]byte(nil), buf[:k]...), func(p Packet) {
				if p.Aside {
					r.aside.WriteTo(p.Data, from)
				} else {
					r.pc.WriteTo(p.Data, from)
				}
			})
		}
	})
	return up, nil
}

// Stream is what a stream relay does to one direction's bytes.
type Stream struct {
	// Chunk, if positive, writes at most Chunk bytes at a time (1: a
	// write for each byte, every character split).
	Chunk int
	// Coalesce, if positive, gathers what comes for up to Coalesce before
	// writing it on in one write.
	Coalesce time.Duration
	// Delay holds up each write by Delay.
	Delay time.Duration
	// Rate, if positive, throttles the direction to Rate bytes a second.
	Rate int
	// After, if positive, is how many bytes pass before Cut happens.
	After int64
	// Cut is what happens after After bytes.
	Cut Cut
}

// Cut is what a stream relay does to a connection after a direction's
// After bytes.
type Cut int

// The cuts: CutClose closes both sides (gracefully, but a side with
// bytes unread resets, as the kernel does), CutReset resets both,
// CutHalf ends this direction (FIN) while the other goes on, and
// CutStall passes nothing more, the connection open until the other
// direction ends it or the test ends. CutHalf's FIN comes with the last
// bytes, in one segment (Linux).
const (
	CutNone Cut = iota
	CutClose
	CutReset
	CutHalf
	CutStall
)

// StreamRelay relays each connection to the stream server at server,
// impairing its bytes to the server with up and to the client with down.
// It stops when the test ends, closing what it relays, and returns its
// address.
func StreamRelay(t testing.TB, server string, up, down Stream) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(stop)
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		select {
		case <-stop:
			c.Close()
			return false
		default:
		}
		conns[c] = true
		return true
	}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", server)
			if err != nil {
				c.Close()
				continue
			}
			if !track(c) || !track(s) {
				s.Close()
				continue
			}
			var once sync.Once
			done := make(chan struct{}) // closed when the connection ends
			end := func(reset bool) {
				once.Do(func() {
					close(done)
					if reset {
						c.(*net.TCPConn).SetLinger(0)
						s.(*net.TCPConn).SetLinger(0)
					}
					c.Close()
					s.Close()
				})
			}
			var pair sync.WaitGroup
			pair.Go(func() { pump(s, c, up, end, done, stop) })
			pair.Go(func() { pump(c, s, down, end, done, stop) })
			wg.Go(func() {
				pair.Wait()
				end(false)
				mu.Lock()
				delete(conns, c)
				delete(conns, s)
				mu.Unlock()
			})
		}
	})
	return ln.Addr().String()
}

// pump copies from src to dst as how says, until src ends (then it ends
// dst's direction) or a cut ends the connection.
func pump(dst, src net.Conn, how Stream, end func(reset bool), done, stop <-chan struct{}) {
	buf := make([]byte, 64<<10)
	var passed int64
	start := time.Now()
	wait := func(d time.Duration) bool {
		if d <= 0 {
			return true
		}
		select {
		case <-time.After(d):
			return true
		case <-done:
			return false
		case <-stop:
			return false
		}
	}
	for {
		n, err := src.Read(buf)
		if n > 0 && how.Coalesce > 0 {
			// Gather more for up to Coalesce, into the rest of buf.
			src.SetReadDeadline(time.Now().Add(how.Coalesce))
			for n < len(buf) {
				var k int
				k, err = src.Read(buf[n:])
				n += k
				if err != nil {
					break
				}
			}
			src.SetReadDeadline(time.Time{})
			if errors.Is(err, os.ErrDeadlineExceeded) {
				err = nil // the gathering's end, not the connection's
			}
		}
		p := buf[:n]
		for len(p) > 0 {
			k := len(p)
			if how.Chunk > 0 {
				k = min(k, how.Chunk)
			}
			if how.Rate > 0 { // 10 ms' worth at a time, not a burst a read long
				k = min(k, max(1, how.Rate/100))
			}
			if how.After > 0 && how.Cut != CutNone {
				if left := how.After - passed; left <= 0 {
					cut(dst, how, end, done, stop)
					return
				} else if int64(k) > left {
					k = int(left)
				}
			}
			if !wait(how.Delay) {
				return
			}
			if how.Cut == CutHalf && how.After > 0 && passed+int64(k) >= how.After {
				// The bytes before the end go with it: a peer that read
				// them could otherwise act on them (send the next
				// message) before the end of file came, on a busy
				// machine a millisecond later, and an end right after
				// the last reply was one that crossed a message.
				holdForFIN(dst)
			}
			if how.Rate > 0 && !wait(time.Until(start.Add(time.Duration(float64(passed+int64(k))/float64(how.Rate)*float64(time.Second))))) {
				return
			}
			if _, werr := dst.Write(p[:k]); werr != nil {
				end(true)
				return
			}
			passed += int64(k)
			p = p[k:]
		}
		if how.After > 0 && how.Cut != CutNone && passed >= how.After {
			cut(dst, how, end, done, stop)
			return
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				dst.(*net.TCPConn).CloseWrite()
				return
			}
			end(true) // a reset, passed on
			return
		}
	}
}

func cut(dst net.Conn, how Stream, end func(reset bool), done, stop <-chan struct{}) {
	switch how.Cut {
	case CutClose:
		end(false)
	case CutReset:
		end(true)
	case CutHalf:
		dst.(*net.TCPConn).CloseWrite()
	case CutStall:
		select {
		case <-done:
		case <-stop:
		}
	}
}
