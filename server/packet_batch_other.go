//go:build !linux

package server

// Elsewhere than Linux, each datagram is read and answered with a system
// call of its own.

type batchWorker struct{}

func (p *packetConn) newBatchWorker() *batchWorker { return nil }

func (*batchWorker) serve() error { panic("unreachable") }
