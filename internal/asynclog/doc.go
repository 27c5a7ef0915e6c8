// Package asynclog is a slog.Handler that never blocks its caller on
// its output: it formats each record, on the caller's goroutine, into a
// bounded buffer, and one goroutine writes the buffer's whole lines, in
// order, at most every 100 ms but for a lone line, which goes at once. A
// server that logs every connection keeps serving, and still stops on a
// signal, when whatever reads its stderr stalls and the pipe fills.
//
// When the buffer is full a line is dropped and counted. The next write
// carries, after the lines kept, one warning, "log records dropped" with
// dropped=N, in the log's own format, so a reader can tell that lines are
// missing. At exit, Close writes what waits, but only as long as its
// context allows; to a pipe, in writes small enough that the kernel takes
// each whole, so that what is left in it when the process exits is whole
// lines:
//
//	logs := asynclog.New(os.Stderr, 0, func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) })
//	log := slog.New(logs)
//	defer func() {
//		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
//		defer cancel()
//		logs.Close(ctx) // the last lines, unless stderr is stuck
//	}()
package asynclog
