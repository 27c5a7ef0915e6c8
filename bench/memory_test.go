package bench_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"shout/bench"
	"shout/endpoint"
)

// connBudget is what a connection may cost bench while it runs (Go heap
// and stacks): its socket's state, its place in a loop and its message
// in flight, no goroutine and no buffer of its own. It had been about
// 230 KB (two goroutines, a 64 KiB read buffer, a 4,096-message queue
// and a histogram each), which made 19,000 connections take gigabytes.
const connBudget = 4 << 10

// goroutineConnBudget is the same with the goroutine driver, which
// serves streams where there is no event loop: two goroutines and a 4 KiB
// read buffer. Measured at 15 KB.
const goroutineConnBudget = 20 << 10

// echoEnv, when set, makes the test binary an echo server in a process of
// its own, so that its memory is not counted as bench's.
const echoEnv = "SHOUT_BENCH_TEST_ECHO"

// echoMain serves echo on 127.0.0.1, prints its address, and exits when
// its stdin closes.
func echoMain() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(1)
		}
		go func() { defer c.Close(); io.Copy(c, c) }()
	}
}

// echoProcess starts the echo server process and returns its address.
func echoProcess(t *testing.T) string {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), echoEnv+"=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("echo server: %v", err)
	}
	return addr[:len(addr)-1]
}

func TestMemoryPerConnection(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory is not bench's")
	}
	const n = 2000
	addr := echoProcess(t)
	cfg := bench.Config{
		Endpoint: endpoint.Endpoint{Network: "tcp", Address: addr},
		Conns:    n, Mode: "echo", Duration: 500 * time.Millisecond, Warmup: -1, Timeout: 5 * time.Second,
	}
	before := inUse()
	// Sample while the run goes on; its peak is what it cost.
	peak := make(chan uint64)
	stop := make(chan struct{})
	go func() {
		var top uint64
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				top = max(top, inUse())
			case <-stop:
				peak <- top
				return
			}
		}
	}()
	rep, err := bench.Run(context.Background(), cfg)
	close(stop)
	top := <-peak
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("the run was not all right: %+v", rep)
	}
	per := int64(top-before) / n
	t.Logf("%d connections: %d bytes each at the peak (heap and stacks), %d messages", n, per, rep.Messages)
	budget := int64(connBudget)
	if goroutineDriver {
		budget = goroutineConnBudget
	}
	if per > budget {
		t.Errorf("a connection costs %d bytes, over its budget of %d", per, budget)
	}
}

// inUse is the Go heap and stacks in use, after a collection.
func inUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}
