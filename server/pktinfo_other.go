//go:build !linux

package server

import (
	"net"
	"net/netip"
)

// Elsewhere than Linux, a wildcard listener's replies leave from the
// address the kernel picks.

const pktinfoSpace = 0

func enablePktinfo(*net.UDPConn) (v6, ok bool) { return false, false }

func parsePktinfo([]byte, int) (dst, from netip.Addr, ifindex uint32) { return }

func pktinfoFrom([]byte, bool, netip.Addr, uint32) []byte { return nil }
