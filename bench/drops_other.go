//go:build !linux

package bench

import "net"

// socketDrops is 0: only Linux says how many datagrams a socket dropped.
func socketDrops(net.Conn) int64 { return 0 }
