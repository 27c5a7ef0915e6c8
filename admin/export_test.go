package admin

import (
	"net/http"
	"time"
)

// SetWriteTimeout sets how long an answer of HTTPServer's may take to
// write, until the test ends.
func SetWriteTimeout(d time.Duration) (restore func()) {
	old := writeTimeout
	writeTimeout = d
	return func() { writeTimeout = old }
}

// SetEvictGrace sets how long a connection waits on its client before a
// full listener may close it, until the test ends.
func SetEvictGrace(d time.Duration) (restore func()) {
	old := evictGrace
	evictGrace = d
	return func() { evictGrace = old }
}

// PprofSeconds is pprofSeconds, for a fuzz test.
var PprofSeconds = pprofSeconds

// Handle serves handler at pattern beside h's endpoints.
func (h *Handler) Handle(pattern string, handler http.Handler) { h.mux.Handle(pattern, handler) }

// Send and Answered are the tests' send and answered, for those outside
// the package.
var Send, Answered = send, answered
