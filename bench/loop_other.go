//go:build !linux

package bench

import "net"

// loopsAvailable: this system has no event-loop driver.
const loopsAvailable = false

// startLoops reports that this system has no event-loop driver.
func (r *run) startLoops([]net.Conn) (driver, bool, error) { return nil, false, nil }

// loopFiles is how many descriptors the loops need besides the
// connections: none here.
func loopFiles(int) int { return 0 }
