//go:build !unix

package bench

func checkFileLimit(int) error { return nil }
