package shouttest

import "shout/internal/kerneldrops"

// BacklogDrops is kerneldrops.Backlog: how many packets the machine's
// per-CPU backlogs, which every loopback packet passes through, have
// dropped since it started.
func BacklogDrops() int64 { return kerneldrops.Backlog() }

// UDPSocketDrops is kerneldrops.UDPSocket: how many datagrams the UDP
// sockets on 127.0.0.1:port have dropped, their receive buffers full.
func UDPSocketDrops(port int) int64 { return kerneldrops.UDPSocket(port) }
