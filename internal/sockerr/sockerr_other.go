//go:build !windows

package sockerr

func systemReset(error) bool { return false }

func systemRefused(error) bool { return false }
