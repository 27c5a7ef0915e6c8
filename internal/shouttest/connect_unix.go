//go:build unix

package shouttest

import "syscall"

func connect(fd uintptr, sa syscall.Sockaddr) error { return syscall.Connect(int(fd), sa) }
