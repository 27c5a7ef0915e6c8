package sockfd

import "golang.org/x/sys/unix"

// KeepAlive is the keep-alive net gives each TCP connection it accepts
// by default (net.ListenConfig.KeepAlive 0): probes after 15 s idle,
// 15 s apart, 9 of them, so that a client that vanished gives its place
// up after about two and a half minutes. Set on a listener, Linux gives
// it to every connection accepted from it (the accepted socket is a copy
// of the listener's), which then needs no system call of its own for it.
var KeepAlive = [...]Option{
	{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
	{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 15},
	{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 15},
	{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 9},
}
