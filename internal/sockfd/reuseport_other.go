//go:build !unix

package sockfd

import (
	"errors"
	"syscall"
)

// ReusePort fails here: the system has no SO_REUSEPORT.
func ReusePort(_, _ string, _ syscall.RawConn) error {
	return errors.New("SO_REUSEPORT is not available on this system")
}
