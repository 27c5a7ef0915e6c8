// Package server is shout's uppercase server: every byte a client sends
// over a stream (TCP, Unix socket) comes back upper-cased as soon as it is
// read, and every datagram (UDP) is answered with its uppercase.
//
// One Server serves any number of listeners and packet connections, as
// net/http's Server and miekg/dns's do:
//
//	srv := &server.Server{IdleTimeout: 5 * time.Minute}
//	ln, _ := net.Listen("tcp", "127.0.0.1:8080")
//	pc, _ := net.ListenPacket("udp", "127.0.0.1:8080")
//	go srv.ServePacket(pc)
//	err := srv.Serve(ln) // ErrServerClosed after Shutdown or Close
//
// Streams are not framed: each read is transformed and written back at
// once, so line-based clients, byte-at-a-time terminals and pipelining
// clients all work, and a message of any length flows through in bounded
// memory. A character split across reads is answered when its last byte
// arrives.
//
// # Parts
//
// A session is one stream connection's state, whatever moves its bytes:
// the Transformer, the bytes of a character split across reads, the counts
// and times an Observer sees, and why it ended (a Reason). A driver moves
// the bytes, chosen for each listener by Engine. On Linux, event loops
// (one per core, on epoll) serve plain TCP and Unix listeners: an idle
// connection is its socket and a 256-byte struct, no goroutine and no
// buffer. Otherwise a goroutine per connection serves, which works with
// any net.Conn (WrapConn can make it a TLS or PROXY protocol connection)
// and reads *net.TCPConn and *net.UnixConn without holding a buffer while
// they idle. Both behave alike under every limit, timeout and stop, and
// tell observers the same things; the package's tests run against each.
// Observers watch: the log is one (NewLogObserver), and several combine
// with Observers. An Observer that is also a SocketTracer follows every
// socket call (NewTraceObserver, behind shout serve --trace). Timeouts
// are not deadlines every message refreshes: one goroutine per Server
// sweeps the goroutine driver's connections (timeouts.go), and each
// event loop sweeps its own.
//
// By file: server.go has the Server, Serve and the stop; engine.go the
// choice of driver; session.go the session; conn.go a goroutine per
// connection; loop_linux.go the event loops; packet.go and
// packet_batch_linux.go the datagram workers, with the source table in
// budget.go and the loop guard in guard.go; observer.go and trace.go
// what observers are told, logobserver.go and traceobserver.go the
// package's own two (the log, and shout serve --trace).
//
// # Limits
//
// MaxConns and MaxConnsPerIP: a connection past a limit is rejected
// gracefully (its client reads end of file, not a reset), and observers
// are told why. IdleTimeout: a connection that sends nothing for that
// long is closed, gracefully. WriteTimeout: a client that stops reading
// is dropped, over TCP with a reset, when a reply cannot be written for
// that long while it takes none of what was sent (on Linux; elsewhere
// the write's time alone counts); until then it holds one buffer
// (2×ReadSize) and nothing more is read from it.
// SourceRate: each datagram source address (all its ports together, and
// an IPv6 address's /64: a forger picks the port; a loopback source, whose
// replies never leave this host, each port apart) gets that many
// bytes of replies a second, with a burst of one second's worth, in a
// table of fixed size; past it, its datagrams are dropped. Datagrams whose
// reply would start a loop are dropped too (see ServePacket). Temporary
// accept errors (such as running out of file descriptors) are logged and
// retried after 5 ms, doubling to 1 s, as net/http does; others end Serve.
// A datagram read that fails is logged (at most once a second) and
// retried: at once after an ICMP error for an earlier reply, which a
// client can cause at will, and otherwise after the same waits, so that
// a failure that repeats does not spin.
//
// # Stopping
//
// Shutdown stops accepting, then each connection answers every byte that
// had arrived, shuts its write side and reads until the client's end of
// file (for up to Linger while nothing happens) before it closes: closing
// with unread input would make the kernel reset the connection and drop
// replies the client has not received yet. Close stops at once.
//
// The lifecycle is net/http's. Serve and ServePacket always return an
// error: ErrServerClosed once Shutdown or Close is called (at once, not
// when the stop is done: wait for Shutdown to return), and otherwise why
// they ended (a listener closed from outside, an accept error that is not
// temporary). A Serve that ends that way leaves its connections served,
// until they close or until Shutdown or Close, and the server's other
// listeners served. Once nothing is served (no Serve or ServePacket
// running, no connection open) the Server's goroutines end and its
// descriptors close shortly after, stopped or not (Shutdown and Close
// are what wait for that): the event loops end, and the next Serve
// starts them again. A Server that was stopped is not used again: its
// Serve and ServePacket return ErrServerClosed at once, closing what they
// were given.
package server
