//go:build !windows

package sockerr

func systemReset(error) bool { return false }
