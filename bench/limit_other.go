//go:build !unix

package bench

func checkFileLimit(int, int, string) error { return nil }
