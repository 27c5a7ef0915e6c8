package server

import (
	"encoding/binary"
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

// An accepted client's TCP address is one allocation, the address with
// its IP's bytes, where net.TCPAddrFromAddrPort makes two; and it is the
// address that makes.
func TestAddrOfOneAllocation(t *testing.T) {
	for _, ap := range []string{"192.0.2.7:40123", "[2001:db8::1]:443", "[::ffff:192.0.2.7]:1"} {
		want := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(ap))
		var rsa unix.RawSockaddrAny
		if want.IP.To4() != nil && len(want.IP) == net.IPv4len {
			sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&rsa))
			sa.Family, sa.Addr = unix.AF_INET, [4]byte(want.IP)
			binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], uint16(want.Port))
		} else {
			sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&rsa))
			sa.Family, sa.Addr = unix.AF_INET6, [16]byte(want.IP)
			binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], uint16(want.Port))
		}
		a, ok := addrOf(-1, &rsa, "").(*net.TCPAddr)
		if !ok || !a.IP.Equal(want.IP) || len(a.IP) != len(want.IP) || cap(a.IP) != len(want.IP) || a.Port != want.Port || a.Zone != "" {
			t.Errorf("%s: %#v, want %#v", ap, a, want)
		}
		if n := testing.AllocsPerRun(100, func() { addrOf(-1, &rsa, "") }); n != 1 {
			t.Errorf("%s: %v allocations, want 1", ap, n)
		}
	}
}
