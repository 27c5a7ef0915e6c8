//go:build !unix

package shouttest

import "errors"

func lockFile(path string) (unlock func(), err error) {
	return nil, errors.New("no file locks on this system")
}
