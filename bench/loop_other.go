//go:build !linux

package bench

import "net"

// startLoops reports that this system has no event-loop driver.
func (r *run) startLoops([]net.Conn) (driver, bool) { return nil, false }
