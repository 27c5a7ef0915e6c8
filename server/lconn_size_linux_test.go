package server

import (
	"testing"
	"unsafe"
)

// An idle connection of the event-loop driver is mostly its lconn, which
// the heap keeps in the smallest size class that holds it: at stop 58 it
// had grown from 256 bytes to 328 (the 352-byte class), and the peers'
// -idle workload read 0.55 KB a connection, above issue 12's 0.5 KB
// (BENCHMARKS.md, stop 58). A field added to lconn, its session or
// ConnInfo must not take it past 288 bytes unnoticed: BenchmarkIdleHeap
// says what an idle connection holds.
func TestLconnSize(t *testing.T) {
	if n := unsafe.Sizeof(lconn{}); n > 288 {
		t.Errorf("lconn is %d bytes, want at most 288 (session %d, ConnInfo %d)", n, unsafe.Sizeof(session{}), unsafe.Sizeof(ConnInfo{}))
	}
}
