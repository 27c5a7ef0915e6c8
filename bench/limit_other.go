//go:build !unix

package bench

func checkFileLimit(int, int) error { return nil }
