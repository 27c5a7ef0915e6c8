// Package asynclog is a slog.Handler that never blocks its caller: it
// puts each record on a bounded queue and one goroutine hands them, in
// order, to the handler it wraps. A server that logs every connection
// keeps serving, and still stops on a signal, when whatever reads its
// stderr stalls and the pipe fills.
//
// When the queue is full a record is dropped and counted. Once the writer
// catches up (or, while it stays behind, after each queue's worth of
// records), it writes one warning, "log records dropped" with dropped=N,
// through the wrapped handler, so a reader can tell that lines are
// missing. At exit, Close waits for the queue to drain, but only as long
// as its context allows:
//
//	logs := asynclog.New(slog.NewTextHandler(os.Stderr, nil), 0)
//	log := slog.New(logs)
//	defer func() {
//		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
//		defer cancel()
//		logs.Close(ctx) // the last lines, unless stderr is stuck
//	}()
package asynclog
