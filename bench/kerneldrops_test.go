package bench_test

import (
	"bytes"
	"net"
	"sync/atomic"
	"testing"

	"shout/bench"
	"shout/internal/shouttest"
)

// kernelDrops counts the datagrams the kernel dropped while a test ran,
// on their way between bench and the test's stand-in UDP server: at the
// stand-in's socket, its receive buffer full (the stand-in left without
// CPU on a busy machine), at bench's sockets (Report.DroppedByBench), and
// in the per-CPU backlog every loopback packet passes through
// (net.core.netdev_max_backlog, 1,000), which a burst of the package's
// other tests or of another process fills. None of those reached the
// stand-in, or bench: a patient run waits a minute for their replies,
// and counts them lost (2 of 400 in CI, at load average 20). A test that
// wants every datagram answered allows that many lost, and no more: a
// datagram bench counts lost though the kernel dropped nothing is bench's
// miscount, and fails the test. (The backlog's drops are the machine's,
// whoever sent the packets: a machine that drops there while the test
// runs excuses as many.)
type kernelDrops struct {
	pc      net.PacketConn // the stand-in's socket
	backlog int64          // the machine's backlog drops when the test began
	// bench is what bench's sockets dropped, in the run that counting
	// made: all of it, where DroppedByBench leaves out a socket's that
	// got duplicates (what it dropped may be those). A test whose server
	// answers twice wants it: a datagram whose two replies bench's
	// socket dropped was lost, though DroppedByBench said 0.
	bench atomic.Int64
}

// counting returns cfg counting in k what its run's sockets drop, all
// of it (see kernelDrops.bench).
func (k *kernelDrops) counting(cfg bench.Config) bench.Config {
	return bench.CountAllDrops(cfg, &k.bench)
}

// udpStandIn is udpServer, with what the kernel drops on its way counted
// from now.
func udpStandIn(t *testing.T, answer func(n int, b []byte) [][]byte) (string, *kernelDrops) {
	pc := shouttest.PacketServerConn(t, func(n int, b []byte) [][]byte { return answer(n, bytes.ToUpper(b)) })
	return pc.LocalAddr().String(), dropsAt(pc)
}

// dropsAt counts from now what the kernel drops on the way to and from
// the stand-in (or shout) on pc.
func dropsAt(pc net.PacketConn) *kernelDrops {
	return &kernelDrops{pc: pc, backlog: shouttest.BacklogDrops()}
}

// of is how many datagrams the kernel dropped since k was made, rep's
// run's among them.
func (k *kernelDrops) of(rep *bench.Report) int64 {
	return bench.SocketDrops(k.pc) + max(rep.DroppedByBench, k.bench.Load()) + shouttest.BacklogDrops() - k.backlog
}

// checkLostToKernel fails t unless rep lost no more datagrams than the
// kernel dropped (k), and returns rep with those the kernel dropped out
// of its Lost: what the test judges bench by. It says how many the
// kernel dropped, if any. Over a stream (k nil) it returns rep: nothing
// may be lost.
func checkLostToKernel(t *testing.T, rep *bench.Report, k *kernelDrops) *bench.Report {
	t.Helper()
	if k == nil {
		return rep
	}
	dropped := k.of(rep)
	if rep.Lost > dropped {
		t.Errorf("%d lost, but the kernel dropped %d (socket buffers, the loopback backlog): %d lost that it did not drop",
			rep.Lost, dropped, rep.Lost-dropped)
	}
	if dropped == 0 {
		return rep
	}
	t.Logf("%d datagrams dropped by the kernel while the test ran (socket buffers, the loopback backlog); %d lost", dropped, rep.Lost)
	served := *rep
	served.Lost -= min(rep.Lost, dropped)
	return &served
}
