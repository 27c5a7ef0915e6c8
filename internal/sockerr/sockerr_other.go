//go:build !windows

package sockerr

import "syscall"

func systemReset(error) bool { return false }

func systemRefused(error) bool { return false }

func systemAddrInUse(error) bool { return false }

func systemAddrNotAvail(error) bool { return false }

func systemBrokenPipe(error) bool { return false }

func systemICMP(syscall.Errno) bool { return false }
