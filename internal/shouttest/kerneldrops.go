package shouttest

import "shout/internal/kerneldrops"

// BacklogDrops is kerneldrops.Backlog: how many packets the machine's
// per-CPU backlogs, which every loopback packet passes through, have
// dropped since it started.
func BacklogDrops() int64 { return kerneldrops.Backlog() }

// UDPSocketDrops is kerneldrops.UDPSocket: how many datagrams the UDP
// sockets on port that loopback's datagrams to 127.0.0.1 reach (on
// 127.0.0.1, ::1 or a wildcard address) have dropped, their receive
// buffers full.
func UDPSocketDrops(port int) int64 { return kerneldrops.UDPSocket(port) }
