package endpoint

import (
	"bufio"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
)

// The kernel's tables as /proc/net/tcp and tcp6 print them (on a
// little-endian machine): a listener on 127.0.0.1:8080, one on every
// IPv6 address (and IPv4's, dual-stack) at 9090, one on ::1 at 7070, one
// on ::ffff:127.0.0.1 at 8081 (an IPv6 socket's, IPv4's 127.0.0.1), and a
// connection in TIME_WAIT (06) from 127.0.0.1:6060.
const (
	tcpTable = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 43230629 2 00000000f5a97d8e 100 0 0 10 0
   1: 0100007F:17AC 0100007F:A308 06 00000000:00000000 03:00000648 00000000     0        0 0 3 000000006de51cfa
`
	tcp6Table = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:2382 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1B9E 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6 1 0000000000000000 100 0 0 10 0
`
)

func TestListedListener(t *testing.T) {
	if !little() {
		t.Skip("the tables here are a little-endian machine's")
	}
	for _, tc := range []struct {
		table, ip string
		port      int
		want      bool
	}{
		{tcpTable, "127.0.0.1", 8080, true},
		{tcpTable, "127.0.0.2", 8080, false}, // another address: not this one's listener
		{tcpTable, "0.0.0.0", 8080, true},    // a wildcard's listen meets every address's listener
		{tcpTable, "::", 8080, true},
		{tcpTable, "127.0.0.1", 6060, false}, // TIME_WAIT holds the port, listens on nothing
		{tcpTable, "127.0.0.1", 8081, false},
		{tcp6Table, "127.0.0.1", 9090, true}, // every address's listener meets this one's
		{tcp6Table, "::1", 7070, true},
		{tcp6Table, "::ffff:127.0.0.1", 7070, false},
		{tcp6Table, "::1", 7071, false},
		// 127.0.0.1's listener, though an IPv6 socket's: a listen there
		// is refused by it, and was said to find no server there.
		{tcp6Table, "127.0.0.1", 8081, true},
	} {
		got := listedListener(bufio.NewScanner(strings.NewReader(tc.table)), netip.MustParseAddr(tc.ip), tc.port)
		if got != tc.want {
			t.Errorf("a listener on %s port %d: %v, want %v", tc.ip, tc.port, got, tc.want)
		}
	}
}

func little() bool { return binary.NativeEndian.Uint16([]byte{1, 0}) == 1 }

// Where the kernel's tables cannot be read (a container without
// /proc/net), nothing is known of a listener, and bind's words are left
// as they are: "no server listens there" would be a guess.
func TestHeldNotListeningWithoutTables(t *testing.T) {
	saved := procTables
	defer func() { procTables = saved }()
	procTables = []string{t.TempDir() + "/tcp", t.TempDir() + "/tcp6"}
	if found, known := listenerOn(netip.MustParseAddr("127.0.0.1"), 8080); found || known {
		t.Errorf("listenerOn with no tables: found %v, known %v; want false, false", found, known)
	}
	err := &net.OpError{Op: "listen", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
	if got := heldNotListening(err); got != error(err) {
		t.Errorf("heldNotListening with no tables: %v, want %v as it is", got, err)
	}
}
