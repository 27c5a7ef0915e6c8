package server

import (
	"net"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkEmptyBacklog is what a loop pays to learn that no more
// connections wait: an accept4 that finds the backlog empty (Linux makes
// and frees a socket and its file for it), against a poll of the epoll
// set, with the listener in it, that finds nothing. It is why a loop
// takes one connection per report of a listener (loop.accept).
func BenchmarkEmptyBacklog(b *testing.B) {
	_, raw := rawListener(b)
	b.Run("accept4", func(b *testing.B) {
		raw.Control(func(fd uintptr) {
			var sa unix.RawSockaddrAny
			for b.Loop() {
				if _, err := acceptFD(int(fd), &sa); err != unix.EAGAIN {
					b.Fatalf("accept4 on an empty backlog: %v, want EAGAIN", err)
				}
			}
		})
	})
	b.Run("epoll_wait", func(b *testing.B) {
		ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			b.Fatal(err)
		}
		defer unix.Close(ep)
		raw.Control(func(fd uintptr) {
			if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, int(fd), &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
				b.Fatal(err)
			}
		})
		events := make([]unix.EpollEvent, 256)
		for b.Loop() {
			if n, err := pollNow(ep, events); n != 0 || err != nil {
				b.Fatalf("poll found %d events, %v; want none", n, err)
			}
		}
	})
}

// rawListener listens on a loopback port for tb, which closes it, and
// returns the listener and its raw descriptor's access.
func rawListener(tb testing.TB) (net.Listener, syscall.RawConn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	raw, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	return ln, raw
}
