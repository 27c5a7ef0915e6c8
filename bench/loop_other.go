//go:build !linux

package bench

import "net"

// loopsAvailable: this system has no event-loop driver.
const loopsAvailable = false

// startLoops reports that this system has no event-loop driver.
func (r *run) startLoops([]net.Conn) (driver, bool, error) { return nil, false, nil }
