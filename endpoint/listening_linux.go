package endpoint

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// procTables are the kernel's tables of TCP sockets, IPv4's and IPv6's.
var procTables = []string{"/proc/net/tcp", "/proc/net/tcp6"}

// listenerOn reports whether a TCP socket of this network namespace
// listens on port at ip or at a wildcard address (ip unspecified: at any
// address), as the kernel's tables in /proc/net/tcp and tcp6 list them,
// and whether it could tell (false if neither table could be read). It
// looks without a connection: a probe would reach whatever server
// answers there, and wait on one that does not.
func listenerOn(ip netip.Addr, port int) (found, known bool) {
	ip = ip.Unmap()
	for _, table := range procTables {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		known = true
		found = listedListener(bufio.NewScanner(f), ip, port)
		f.Close()
		if found {
			return true, true
		}
	}
	return false, known
}

// listedListener reports whether a line of a /proc/net/tcp-shaped table
// is a listening socket (state 0A) on port at ip or at a wildcard
// address; ip unspecified matches a listener at any address.
func listedListener(s *bufio.Scanner, ip netip.Addr, port int) bool {
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 4 || f[3] != "0A" {
			continue
		}
		hexAddr, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil || int(p) != port {
			continue
		}
		at, ok := procAddr(hexAddr)
		if ok && (ip.IsUnspecified() || at.IsUnspecified() || at == ip) {
			return true
		}
	}
	return false
}

// procAddr decodes an address as /proc/net/tcp and tcp6 print it: each
// 32-bit word in hex, in the machine's byte order.
func procAddr(h string) (netip.Addr, bool) {
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 4 && len(b) != 16 {
		return netip.Addr{}, false
	}
	for i := 0; i < len(b); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(b[i:]))
	}
	a, _ := netip.AddrFromSlice(b)
	return a.Unmap(), true
}
