//go:build !unix

package client

// watchStops does nothing: there are no job-control signals here.
func (s *session) watchStops() (end func()) { return func() {} }

// foreground reports true: there is no background to be in.
func (t *tty) foreground() bool { return true }

// suspendSelf does nothing: there is no job control here.
func suspendSelf() {}
