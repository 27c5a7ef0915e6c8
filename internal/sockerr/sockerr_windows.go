package sockerr

import (
	"errors"
	"syscall"
)

func systemReset(err error) bool {
	return errors.Is(err, syscall.WSAECONNRESET) || errors.Is(err, syscall.WSAECONNABORTED)
}

// wsaeConnRefused is WSAECONNREFUSED, which package syscall does not name.
const wsaeConnRefused = syscall.Errno(10061)

func systemRefused(err error) bool { return errors.Is(err, wsaeConnRefused) }
