package upper_test

import (
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/text/transform"

	"shout/upper"
)

func Example() {
	t, err := upper.New(upper.Upper, "")
	if err != nil {
		panic(err)
	}
	fmt.Println(t.String("hello egon 哈哈哈"))
	fmt.Println(t.String("straße ﬁ"))
	// Output:
	// HELLO EGON 哈哈哈
	// STRASSE FI
}

func ExampleNew_turkish() {
	t, _ := upper.New(upper.Upper, "tr")
	fmt.Println(t.String("istanbul"))
	// Output: İSTANBUL
}

func ExampleParseMode() {
	for _, name := range []string{"upper", "simple", "ascii", "echo"} {
		m, _ := upper.ParseMode(name)
		t, _ := upper.New(m, "")
		fmt.Printf("%-6s %s\n", m, t.String("straße"))
	}
	// Output:
	// upper  STRASSE
	// simple STRAßE
	// ascii  STRAßE
	// echo   straße
}

// A Transformer streams: x/text's Reader and Writer drive it across reads.
func ExampleTransformer_stream() {
	var t upper.Transformer // the zero value is full uppercase
	r := transform.NewReader(strings.NewReader("grüße aus köln\n"), &t)
	io.Copy(os.Stdout, r)
	// Output: GRÜSSE AUS KÖLN
}

// Transform consumes everything but an incomplete character at the end,
// which the caller keeps and passes again with the next read.
func ExampleTransformer_Transform() {
	var t upper.Transformer
	dst := make([]byte, upper.MaxExpansion*16)
	src := []byte("ok\xc3") // "ok" and the first byte of "ä"
	nDst, nSrc, err := t.Transform(dst, src, false)
	fmt.Printf("%q %q %v\n", dst[:nDst], src[nSrc:], err)
	src = append(src[nSrc:], 0xa4, '\n') // the rest arrives
	nDst, _, err = t.Transform(dst, src, false)
	fmt.Printf("%q %v\n", dst[:nDst], err)
	// Output:
	// "OK" "\xc3" transform: short source buffer
	// "Ä\n" <nil>
}
