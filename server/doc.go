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
// arrives. Every connection is served by its own goroutine, which keeps a
// 2 KiB stack; buffers come from a pool only once data has arrived and go
// back as soon as it is answered, so an idle connection holds none (on
// Unix, where the server can wait for data without a buffer in hand).
//
// # Limits
//
// MaxConns: a connection past the limit is accepted and closed at once
// (the client sees end of file) and a warning is logged, at most once a
// second. IdleTimeout: a connection that sends nothing for that long is
// closed. WriteTimeout: a client that stops reading is dropped when a reply
// cannot be written for that long, so the memory it holds stays one
// buffer. SourceRate: each datagram source (address and port) gets that
// many bytes of replies a second, with a burst of one second's worth, in a
// table of fixed size; past it, its datagrams are dropped. Datagrams whose
// reply would start a loop are dropped too (see ServePacket). Deadlines are refreshed at most every eighth of their duration,
// so a timeout fires between 7/8 of its value and all of it. Accept errors
// (such as running out of file descriptors) are logged and retried after
// 5 ms, doubling to 1 s, as net/http does.
package server
