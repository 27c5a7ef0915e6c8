package server

import (
	"crypto/tls"
	"net"
	"net/netip"
	"time"
)

// An Observer is told what happens on a server's connections and
// datagrams: logging is one (NewLogObserver), metrics are another. Its
// methods are called concurrently, from the goroutines that serve, so they
// must be safe for that, and quick: a slow observer slows serving. The
// pointers they receive are valid only during the call.
type Observer interface {
	// ConnOpen: a stream connection was accepted and admitted (after
	// WrapConn, so Remote is the client's real address; a client that
	// left before its wrap began, having sent nothing, is told of as
	// opened and closed, with the addresses the wrap had learnt: its
	// socket's, if it left before its PROXY header).
	ConnOpen(c *ConnInfo)
	// ConnRead: the connection read p, which will be answered.
	ConnRead(c *ConnInfo, p []byte)
	// ConnClose: the connection is closed; Reason says why. A connection
	// rejected at a limit or by WrapConn (Reason is ReasonRejected or
	// ReasonWrap, or the wrapper's: ReasonHandshake, ReasonProxyHeader) is
	// closed without an open; one rejected at a limit is told of as soon as
	// its client can read end of file, while the server may still linger on
	// its socket (up to Linger, for a client that keeps it open). One whose
	// wrap was cut short by Shutdown or Close (it failed with the time-out
	// or the closed connection the stop forced on it) has an Err that wraps
	// ErrServerClosed: it did not fail. One that failed on its own during a
	// stop did.
	ConnClose(c *ConnInfo)
	// Datagram: a datagram was answered, or dropped for Reason.
	Datagram(d *DatagramInfo)
}

// A ReplyObserver is an Observer that is also told of each reply written
// to a stream connection, for byte and message counts that are current
// while the connection lasts (ConnInfo.BytesOut is the observer's to read
// only during a call). The server checks for it once, by a type assertion;
// Observers passes it on to those of its observers that have it.
type ReplyObserver interface {
	Observer
	// ConnReply: the connection wrote n bytes in reply to its last read
	// (ConnRead), or, at the end of its input, for a character held back
	// incomplete. Err is what cut the reply short, or nil if it was
	// written whole. A reply may be empty: a read that ends inside a
	// character is answered with the next.
	ConnReply(c *ConnInfo, n int, err error)
}

// A StopObserver is an Observer that is also told when the server has
// stopped, for what it holds back: the log observer's line for the
// warnings its once-a-second limit held back would otherwise come a
// second later, after the process had exited. The server checks for it
// by a type assertion; Observers passes it on to those of its observers
// that have it.
type StopObserver interface {
	Observer
	// ServerStopped: Shutdown or Close has stopped the server, every
	// connection and packet connection closed and every other call
	// made; it comes once, and no call comes after it.
	ServerStopped()
}

// ConnInfo is what an observer learns of one stream connection.
type ConnInfo struct {
	Remote, Local net.Addr
	Start         time.Time
	// End is set at close.
	End               time.Time
	BytesIn, BytesOut int64
	// Reason is set at close, with the error behind it if there is one.
	Reason Reason
	Err    error
	// TLS is the connection's TLS state (version, cipher suite, the
	// client's verified certificates), if it was wrapped in TLS.
	TLS *tls.ConnectionState

	remote remoteMemo // Remote's text, for the log lines
}

// Duration is how long the connection was open, up to End or now.
func (c *ConnInfo) Duration() time.Duration {
	if c.End.IsZero() {
		return time.Since(c.Start)
	}
	return c.End.Sub(c.Start)
}

// DatagramInfo is what an observer learns of one datagram.
type DatagramInfo struct {
	// Remote is where it came from; Local, where it was sent to (the
	// listener's address, or the destination read from the packet on a
	// wildcard listener). Either may be invalid if unknown.
	Remote, Local netip.AddrPort
	// Data is what the client sent.
	Data []byte
	// BytesOut is the reply's size, sent or not; 0 if there was none to
	// send (ReasonTooLarge: it was not made whole).
	BytesOut int
	// Reason is ReasonNone if the reply was sent, else why it was not,
	// with the error behind it if there is one.
	Reason Reason
	Err    error
}

// Observers returns an Observer that tells each of obs in turn. It is a
// ReplyObserver if any of obs is one, and then tells those of replies;
// it is a StopObserver, and tells those of obs that are.
func Observers(obs ...Observer) Observer {
	var replies []ReplyObserver
	for _, o := range obs {
		if r, ok := o.(ReplyObserver); ok {
			replies = append(replies, r)
		}
	}
	if replies == nil {
		return fanout(obs)
	}
	return replyFanout{fanout(obs), replies}
}

type fanout []Observer

func (f fanout) ConnOpen(c *ConnInfo) {
	for _, o := range f {
		o.ConnOpen(c)
	}
}

func (f fanout) ConnRead(c *ConnInfo, p []byte) {
	for _, o := range f {
		o.ConnRead(c, p)
	}
}

func (f fanout) ConnClose(c *ConnInfo) {
	for _, o := range f {
		o.ConnClose(c)
	}
}

func (f fanout) Datagram(d *DatagramInfo) {
	for _, o := range f {
		o.Datagram(d)
	}
}

// ServerStopped tells those of f that are StopObservers.
func (f fanout) ServerStopped() {
	for _, o := range f {
		if s, ok := o.(StopObserver); ok {
			s.ServerStopped()
		}
	}
}

// replyFanout is a fanout whose members include ReplyObservers.
type replyFanout struct {
	fanout
	replies []ReplyObserver
}

func (f replyFanout) ConnReply(c *ConnInfo, n int, err error) {
	for _, o := range f.replies {
		o.ConnReply(c, n, err)
	}
}
