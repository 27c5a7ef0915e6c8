//go:build !unix

package server

func sockFD(any) int { return -1 }

func sockFacts(int) (family, typ string, reuse bool) { return "?", "?", false }

func somaxconn() (int, string) { return 0, "" }
