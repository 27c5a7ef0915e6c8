// Package sockfd runs a function on the file descriptor of a socket that
// Go holds, for the packages that ask the kernel what the net package
// does not say (a queue's length, a TCP state) or set an option it has
// no call for.
package sockfd

import "syscall"

// Option is a socket option with an int value, as setsockopt takes it.
type Option struct{ Level, Opt, Value int }

// Control calls f with the descriptor of x's socket, if x gives raw
// access to one (it is a syscall.Conn: *net.TCPConn, *net.UDPConn,
// *net.UnixConn, their listeners, a wrapper that passes it on); else,
// or once x is closed, it does nothing. The descriptor is x's only while
// f runs: x cannot be closed meanwhile.
func Control(x any, f func(fd int)) {
	sc, ok := x.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) { f(int(fd)) })
}
