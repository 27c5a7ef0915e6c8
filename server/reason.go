package server

// Reason is why a stream connection ended, or why a datagram got no reply.
// It is a small closed set, so that metrics can use it as a label; the
// error behind it, if any, travels beside it for the log.
type Reason uint8

const (
	// ReasonNone: the connection is open, or the datagram was answered.
	ReasonNone Reason = iota

	// Stream connections.

	// ReasonEOF: the client closed (or half-closed) and was answered.
	ReasonEOF
	// ReasonReset: the client reset the connection, while a reply was
	// written too (on Linux, a TCP write's EPIPE is a reset's); on
	// Linux, also after its end of file while replies were still queued
	// for it, which its reset threw away (not answered, as ReasonEOF
	// says).
	ReasonReset
	// ReasonIdleTimeout: the client sent nothing for IdleTimeout.
	ReasonIdleTimeout
	// ReasonWriteTimeout: a reply could not be written for WriteTimeout;
	// or, after the client's end of file, it took none of the replies
	// still queued for WriteTimeout, and they were reset away (see
	// Server.Linger).
	ReasonWriteTimeout
	// ReasonBrokenPipe: a Unix socket's client, or one of a listener
	// whose connections are not TCP, went away while a reply was written;
	// over TCP, on systems other than Linux, a write said "broken pipe"
	// (on Linux that is a reset's: ReasonReset).
	ReasonBrokenPipe
	// ReasonShutdown: the server stopped; for a datagram, Shutdown or
	// Close closed the socket before its reply was sent.
	ReasonShutdown
	// ReasonRejected: over MaxConns or MaxConnsPerIP; the error says which.
	ReasonRejected
	// ReasonWrap: WrapConn, or a listener's WrapConn, failed with an
	// error that gives no reason of its own (see WrapError).
	ReasonWrap
	// ReasonHandshake: the TLS handshake failed or stalled.
	ReasonHandshake
	// ReasonProxyHeader: the PROXY protocol header was missing where
	// required, malformed, or sent by a source not trusted to send one.
	ReasonProxyHeader
	// ReasonError: any other error, in the error beside it.
	ReasonError

	// Datagrams.

	// ReasonOwnAddress: the datagram claimed to come from the server itself.
	ReasonOwnAddress
	// ReasonReflectorPort: it came from a port whose service answers
	// datagrams (echo, chargen, DNS, ...): a reply would start a loop.
	ReasonReflectorPort
	// ReasonLoop: it equals a reply just sent to the same address, from
	// the address it came to: our own reply, bounced back by another echo
	// service.
	ReasonLoop
	// ReasonBudget: its source used up its reply budget (SourceRate).
	ReasonBudget
	// ReasonTooLarge: the reply would not fit in one datagram.
	ReasonTooLarge
	// ReasonSendFailed: sending the reply failed.
	ReasonSendFailed

	numReasons
)

var reasonNames = [numReasons]string{
	ReasonNone:          "none",
	ReasonEOF:           "eof",
	ReasonReset:         "reset",
	ReasonIdleTimeout:   "idle timeout",
	ReasonWriteTimeout:  "write timeout",
	ReasonBrokenPipe:    "broken pipe",
	ReasonShutdown:      "shutdown",
	ReasonRejected:      "rejected",
	ReasonWrap:          "wrap failed",
	ReasonHandshake:     "tls handshake",
	ReasonProxyHeader:   "proxy header",
	ReasonError:         "error",
	ReasonOwnAddress:    "own address",
	ReasonReflectorPort: "reflector port",
	ReasonLoop:          "loop",
	ReasonBudget:        "over budget",
	ReasonTooLarge:      "reply too large",
	ReasonSendFailed:    "send failed",
}

// String returns the reason as the logs show it: "eof", "idle timeout".
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// wrap reports whether r is why a connection's wrap failed (it closed
// without an open).
func (r Reason) wrap() bool {
	return r == ReasonWrap || r == ReasonHandshake || r == ReasonProxyHeader
}
