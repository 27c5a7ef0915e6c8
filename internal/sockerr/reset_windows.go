package sockerr

import (
	"errors"
	"syscall"
)

func systemReset(err error) bool {
	return errors.Is(err, syscall.WSAECONNRESET) || errors.Is(err, syscall.WSAECONNABORTED)
}
