//go:build !linux

package endpoint

import "errors"

// listenerKeepAlive is false: net sets keep-alive on each connection (see
// keepalive_linux.go).
const listenerKeepAlive = false

func setKeepAlive(uintptr) error { return errors.ErrUnsupported }
