package server

import (
	"net"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A link-local client's address has its interface's name as its zone, as
// net gives it, learned with one ioctl; an index no interface has is
// given as its number, as net gives it.
func TestAddrOfZone(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ifs, err := net.Interfaces()
	if err != nil || len(ifs) == 0 {
		t.Fatalf("no interfaces: %v", err)
	}
	want := map[uint32]string{1 << 30: "1073741824"}
	for _, ifi := range ifs {
		want[uint32(ifi.Index)] = ifi.Name
	}
	for index, name := range want {
		var rsa unix.RawSockaddrAny
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&rsa))
		sa.Family, sa.Scope_id = unix.AF_INET6, index
		sa.Addr = netip.MustParseAddr("fe80::1").As16()
		a, ok := addrOf(fd, &rsa, "").(*net.TCPAddr)
		if !ok || a.Zone != name || a.IP.String() != "fe80::1" {
			t.Errorf("interface %d: %v, want fe80::1 with zone %q", index, a, name)
		}
	}
}
