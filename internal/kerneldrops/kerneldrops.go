// Package kerneldrops reads what the kernel counts of the packets it
// dropped: tests that lose a datagram on a busy machine's loopback learn
// from it whether the kernel dropped one (and they may try again) or the
// program under test lost it (a failure). A leaf, so that a package's own
// tests can use it as well as internal/shouttest.
package kerneldrops

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Backlog is how many packets the machine's per-CPU backlogs have
// dropped, full, since it started (/proc/net/softnet_stat's second
// column, summed), or 0 where the system does not say. Every loopback
// packet passes through a backlog (net.core.netdev_max_backlog, 1,000
// packets), which a burst of other tests' or processes' datagrams fills:
// a datagram dropped there never arrives, and the drop is counted only
// there, the machine's, whoever sent the packets.
func Backlog() int64 {
	var n int64
	procLines("/proc/net/softnet_stat", func(fields []string) {
		if len(fields) > 1 {
			d, _ := strconv.ParseUint(fields[1], 16, 32)
			n += int64(d)
		}
	})
	return n
}

// UDPSocket is how many datagrams the UDP sockets on port that
// loopback's datagrams to 127.0.0.1 reach have dropped since they were
// made, their receive buffers full (the drops column of /proc/net/udp
// and udp6), or 0 where the system does not say: what a test that has
// only the port (a server another package made) can learn of them.
// Those sockets are the ones on 127.0.0.1 or ::1, and on a wildcard
// address, 0.0.0.0 or [::], which take 127.0.0.1's datagrams and the
// kernel lists by that address.
func UDPSocket(port int) int64 {
	local := map[string]bool{ // in the kernel's byte order
		"0100007F":                         true, // 127.0.0.1
		"00000000":                         true, // 0.0.0.0
		"0000000000000000FFFF00000100007F": true, // ::ffff:127.0.0.1
		"00000000000000000000000001000000": true, // ::1
		"00000000000000000000000000000000": true, // ::
	}
	return udpDrops(port, func(addr string) bool { return local[addr] })
}

// UDPPort is how many datagrams the UDP sockets on port, at any local
// address and of either family (/proc/net/udp and udp6), have dropped
// since they were made, their receive buffers full, or 0 where the
// system does not say: for sockets on a wildcard address, or on
// 127.0.0.2. Another's socket on the same port at another address adds
// to it.
func UDPPort(port int) int64 {
	return udpDrops(port, func(string) bool { return true })
}

// udpDrops sums the drops of the UDP sockets on port, of either family,
// whose local address (as the kernel writes it) at says to count.
func udpDrops(port int, at func(addr string) bool) int64 {
	p := fmt.Sprintf(":%04X", port)
	var n int64
	for _, path := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		procLines(path, func(fields []string) {
			if len(fields) <= 12 {
				return
			}
			if addr, ok := strings.CutSuffix(fields[1], p); ok && at(addr) {
				d, _ := strconv.ParseInt(fields[12], 10, 64)
				n += d
			}
		})
	}
	return n
}

// procLines calls f with the fields of each line of the file at path,
// if it can be read.
func procLines(path string, f func(fields []string)) {
	file, err := os.Open(path)
	if err != nil {
		return
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f(strings.Fields(sc.Text()))
	}
}
