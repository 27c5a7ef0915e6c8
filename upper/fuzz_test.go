package upper

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// FuzzTransform checks, for any input and any way of cutting it into reads
// and any dst size, that the streamed output equals the reference for the
// whole input, and that no more than 3 bytes are ever held back.
func FuzzTransform(f *testing.F) {
	for _, s := range samples {
		f.Add([]byte(s), uint64(len(s)))
	}
	for _, s := range invalid {
		f.Add([]byte("a"+s+"é"), uint64(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		r := rand.New(rand.NewPCG(seed, seed>>32))
		chunks := make([]int, 1+r.IntN(8))
		for i := range chunks {
			chunks[i] = 1 + r.IntN(16)
		}
		dstSize := 1 + r.IntN(64)
		for _, v := range variants {
			tr := mustNew(t, v.mode, v.lang)
			want := v.ref(data)
			if whole := tr.Append(nil, data); !bytes.Equal(whole, want) {
				t.Fatalf("%s whole %q: got %q, want %q", v.name, data, whole, want)
			}
			got, held := drive(t, tr, data, chunks, dstSize)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s %q in chunks %v, dst %d: got %q, want %q", v.name, data, chunks, dstSize, got, want)
			}
			if held > 3 {
				t.Fatalf("%s %q: held back %d bytes", v.name, data, held)
			}
			if len(got) > tr.MaxExpansion()*len(data) {
				t.Fatalf("%s %q: %d bytes out, over MaxExpansion", v.name, data, len(got))
			}
		}
	})
}
