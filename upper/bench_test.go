package upper

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
	"golang.org/x/text/transform"
)

// benchInputs are 64 KiB each: what a server reads at a time, at most.
func benchInputs() []struct {
	name string
	data []byte
} {
	const size = 64 << 10
	fill := func(s string) []byte { return []byte(strings.Repeat(s, size/len(s)+1)[:size]) }
	r := rand.New(rand.NewPCG(1, 2))
	bin := make([]byte, size)
	for i := range bin {
		bin[i] = byte(r.Uint32())
	}
	return []struct {
		name string
		data []byte
	}{
		{"ascii", fill("the quick brown fox jumps over the lazy dog, said Egon. ")},
		{"chinese", fill("你好世界，哈哈哈。网络通信的套接字服务端与客户端，")},
		{"european", fill("Grüße aus Köln, straße; привет мир; γειά σου κόσμε; café crème, żółć. ")},
		{"binary", bin},
	}
}

func BenchmarkTransform(b *testing.B) {
	shout := mustNew(b, Upper, "")
	ref := cases.Upper(language.Und)
	for _, in := range benchInputs() {
		dst := make([]byte, MaxExpansion*len(in.data))
		run := func(name string, f func()) {
			b.Run(in.name+"/"+name, func(b *testing.B) {
				b.SetBytes(int64(len(in.data)))
				b.ReportAllocs()
				for b.Loop() {
					f()
				}
			})
		}
		run("shout", func() { shout.Transform(dst, in.data, true) })
		run("cases", func() { ref.Transform(dst, in.data, true) })
		run("bytes.ToUpper", func() { bytes.ToUpper(in.data) })
	}
}

func BenchmarkModes(b *testing.B) {
	in := benchInputs()[2].data
	dst := make([]byte, MaxExpansion*len(in))
	for _, v := range variants {
		tr := mustNew(b, v.mode, v.lang)
		b.Run(v.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				tr.Transform(dst, in, true)
			}
		})
	}
}

var _ transform.Transformer = cases.Caser{}
