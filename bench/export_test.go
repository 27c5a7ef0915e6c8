package bench

// UseGoroutines makes runs use the goroutine driver until the returned
// function is called, so tests cover both drivers.
func UseGoroutines() (restore func()) {
	forceGoroutines = true
	return func() { forceGoroutines = false }
}
