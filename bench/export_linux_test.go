package bench

// OnLoopBuffers calls f with the capacity of an event loop's write
// buffer and of a connection's bytes unwritten after each time the loop
// writes what a connection owes, until the returned function is called.
func OnLoopBuffers(f func(wbuf, out int)) (restore func()) {
	loopBuffers = f
	return func() { loopBuffers = nil }
}
