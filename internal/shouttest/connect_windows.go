package shouttest

import "syscall"

func connect(fd uintptr, sa syscall.Sockaddr) error { return syscall.Connect(syscall.Handle(fd), sa) }
