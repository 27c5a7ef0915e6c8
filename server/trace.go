package server

import "net"

// A SocketTracer is an Observer that also follows the sockets themselves:
// each listener as Serve or ServePacket starts on it, and every accept,
// read, write, half-close and close of a stream connection and every
// datagram, in the order they happen. shout serve --trace is one
// (NewTraceObserver). The server looks for it once, with a type
// assertion, as net/http looks for a Flusher; an Observer that is not one
// costs serving nothing more than a nil check per read and write.
//
// Its methods are called from the goroutines that serve, like an
// Observer's, and must be as quick.
type SocketTracer interface {
	Observer
	// TraceListener: Serve is about to accept on l.
	TraceListener(l net.Listener)
	// TraceConn: l accepted nc. The ConnTrace it returns, if not nil, is
	// told of everything that connection does, from its own goroutine.
	TraceConn(l net.Listener, nc net.Conn) ConnTrace
	// TracePacket: ServePacket is about to read from pc. The PacketTrace it
	// returns, if not nil, is told of each datagram, from the workers'
	// goroutines, concurrently.
	TracePacket(pc net.PacketConn) PacketTrace
}

// A ConnTrace follows one stream connection's socket calls. The slices
// it receives are valid only during the call.
type ConnTrace interface {
	// Read: one read asked for up to size bytes and got p, or err: io.EOF
	// for the client's end of file, a reset, a deadline.
	Read(size int, p []byte, err error)
	// Held: after answering a read, the session holds back p (the
	// beginning of a character split across reads) until more arrives.
	Held(p []byte)
	// Write: one write of p wrote n bytes, or failed with err.
	Write(p []byte, n int, err error)
	// CloseWrite: the server shut its write side (a graceful close), and
	// then reads, discarding, until the client's end of file.
	CloseWrite(err error)
	// Discard: while closing gracefully, a read discarded n bytes, or
	// ended with err (io.EOF: the client's end of file).
	Discard(n int, err error)
	// Close: the connection is closed; c says why.
	Close(c *ConnInfo)
}

// A PacketTrace follows one packet connection's datagrams. What its
// methods receive is valid only during the call. Where datagrams are read
// in batches (ServePacket on Linux), a worker calls Recvfrom for each
// datagram of a batch, then Sendto for each once their replies are sent.
type PacketTrace interface {
	// Recvfrom: d was read, and is about to be answered.
	Recvfrom(d *DatagramInfo)
	// Sendto: d was answered with reply, or not, for d.Reason.
	Sendto(d *DatagramInfo, reply []byte)
}

// socketTracer is s's Observer as a SocketTracer, or nil.
func (s *Server) socketTracer() SocketTracer {
	st, _ := s.observer().(SocketTracer)
	return st
}

// fanout traces with the first of its observers that traces each thing.

func (f fanout) TraceListener(l net.Listener) {
	for _, o := range f {
		if st, ok := o.(SocketTracer); ok {
			st.TraceListener(l)
		}
	}
}

func (f fanout) TraceConn(l net.Listener, nc net.Conn) ConnTrace {
	for _, o := range f {
		if st, ok := o.(SocketTracer); ok {
			if t := st.TraceConn(l, nc); t != nil {
				return t
			}
		}
	}
	return nil
}

func (f fanout) TracePacket(pc net.PacketConn) PacketTrace {
	for _, o := range f {
		if st, ok := o.(SocketTracer); ok {
			if t := st.TracePacket(pc); t != nil {
				return t
			}
		}
	}
	return nil
}
