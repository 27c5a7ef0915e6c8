package server

import "testing"

func TestBufPoolClasses(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 1000, 1024, 1025, 3 * 65536, 16 << 20, 16<<20 + 1} {
		p := getBuf(n)
		if len(*p) != n {
			t.Fatalf("getBuf(%d): len %d", n, len(*p))
		}
		putBuf(p)
		q := getBuf(n)
		if len(*q) != n || cap(*q) < n {
			t.Fatalf("getBuf(%d) after put: len %d cap %d", n, len(*q), cap(*q))
		}
	}
}
