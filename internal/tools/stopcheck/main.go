//go:build linux

// Command stopcheck checks that a server stopped by SIGTERM loses no
// reply: it opens -n connections to -addr that each write 1 KiB chunks as
// fast as they can and check every reply byte, sends SIGTERM to -pid once
// every connection has had a reply, and counts the clients that did not
// get the reply to every byte the server's kernel had acknowledged before
// the signal, then end of file. BENCHMARKS.md quotes it.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// acked is how many bytes the peer's kernel has acknowledged (less the SYN).
func acked(c *net.TCPConn) int64 {
	rc, _ := c.SyscallConn()
	var v int64
	rc.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err == nil {
			v = int64(info.Bytes_acked) - 1
		}
	})
	return v
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18092", "the server's address")
	n := flag.Int("n", 1000, "connections")
	pid := flag.Int("pid", 0, "the server's process, to signal")
	flag.Parse()
	chunk := []byte(strings.Repeat("abcdefghijklmnopqrstuvwxyz0123456789-\n", 27))
	want := bytes.ToUpper(chunk)
	type cl struct {
		c      *net.TCPConn
		got    atomic.Int64
		before int64
		err    error
		wrong  bool
		stop   atomic.Bool
	}
	cs := make([]*cl, *n)
	for i := range cs {
		c, err := net.Dial("tcp", *addr)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		cs[i] = &cl{c: c.(*net.TCPConn)}
	}
	var wg sync.WaitGroup
	answered := make(chan struct{}, *n)
	for _, x := range cs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for k := 0; k < 1<<16 && !x.stop.Load(); k++ { // 64 MiB at most
				if _, err := x.c.Write(chunk); err != nil {
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			var off int64
			for {
				m, err := x.c.Read(buf)
				for _, b := range buf[:m] {
					if b != want[off%int64(len(want))] {
						x.wrong = true
					}
					off++
				}
				if x.got.Add(int64(m)) == int64(m) && m > 0 {
					answered <- struct{}{}
				}
				if err != nil {
					x.err = err
					break
				}
			}
			x.stop.Store(true)
			x.c.Close()
		}()
	}
	for range *n {
		<-answered
	}
	for _, x := range cs {
		x.before = acked(x.c)
	}
	t0 := time.Now()
	syscall.Kill(*pid, syscall.SIGTERM)
	wg.Wait()
	lost, wrong := 0, 0
	for _, x := range cs {
		if x.wrong {
			wrong++
		}
		if x.err != io.EOF || x.got.Load() < x.before {
			lost++
			if lost < 4 {
				fmt.Printf("lost: acked %d got %d err %v\n", x.before, x.got.Load(), x.err)
			}
		}
	}
	fmt.Printf("%d clients, %d lost replies, %d wrong, all done %.1fs after SIGTERM\n", *n, lost, wrong, time.Since(t0).Seconds())
}
