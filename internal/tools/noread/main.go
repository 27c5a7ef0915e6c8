// Command noread measures what clients that never read cost a server: it
// opens -n connections to -addr that send and never read, writes on each
// until every write blocks, and prints the VmRSS of the server -pid.
// BENCHMARKS.md quotes it.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

func rss(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:"))
		}
	}
	return "?"
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18091", "the server's address")
	n := flag.Int("n", 2000, "connections")
	pid := flag.Int("pid", 0, "the server's process, for its RSS")
	flag.Parse()
	fmt.Println("before:", rss(*pid))
	msg := []byte(strings.Repeat("straße ﬁ hello egon 哈哈哈 ", 400))
	conns := make([]net.Conn, 0, *n)
	for i := 0; i < *n; i++ {
		c, err := net.Dial("tcp", *addr)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		conns = append(conns, c)
	}
	// Write until every connection blocks for 300 ms.
	for round := 0; round < 50; round++ {
		any := false
		for _, c := range conns {
			c.SetWriteDeadline(time.Now().Add(2 * time.Millisecond))
			for k := 0; k < 64; k++ {
				if _, err := c.Write(msg); err != nil {
					break
				}
				any = true
			}
		}
		if !any {
			break
		}
	}
	time.Sleep(2 * time.Second) // let the server settle into its blocked writes
	fmt.Printf("%d clients that never read: %s\n", *n, rss(*pid))
}
