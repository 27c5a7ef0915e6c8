package bench

import (
	"math/rand/v2"
	"strings"
)

// Texts lists the kinds of message text Config.Text accepts.
var Texts = []string{"utf8", "ascii"}

// utf8Runes are the non-ASCII characters utf8 text draws from: Latin,
// Greek, Cyrillic and CJK, which ASCII-only servers leave alone.
var utf8Runes = []rune("äöüéèçñåøœ" + "αβγδεζηθλμνξπρστφχψω" + "абвгдежзиклмнопрстуфхцчшщыэюя" +
	"你好世界哈网络通信套接字服务端客户")

// longerRunes are the characters whose full uppercase is longer than
// themselves ("ß" → "SS", "ΐ" → "Ϊ́"), which per-rune mappers get wrong.
// They are drawn as often as all of utf8Runes, so even a short run sends
// them.
var longerRunes = []rune("ßﬁŉΐ")

// message returns a message of exactly n bytes that ends in a newline.
func message(r *rand.Rand, n int, text string) []byte {
	var b strings.Builder
	for b.Len() < n-1 {
		left := n - 1 - b.Len()
		switch k := r.IntN(10); {
		case text == "utf8" && k < 3:
			c := utf8Runes[r.IntN(len(utf8Runes))]
			if r.IntN(2) == 0 {
				c = longerRunes[r.IntN(len(longerRunes))]
			}
			if len(string(c)) <= left {
				b.WriteRune(c)
				continue
			}
			b.WriteByte('x')
		case k == 9:
			b.WriteByte(' ')
		default:
			b.WriteByte(byte('a' + r.IntN(26)))
		}
	}
	b.WriteByte('\n')
	return []byte(b.String())
}
