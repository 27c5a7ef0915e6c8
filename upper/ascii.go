package upper

import (
	"encoding/binary"
	"unicode/utf8"
)

// SWAR ("SIMD within a register") constants: one byte value in every byte
// of a uint64.
const (
	lsb  = 0x0101010101010101
	msb  = 0x8080808080808080
	low7 = 0x7f7f7f7f7f7f7f7f
)

// upper8 upper-cases a–z in the eight bytes of w and leaves every other
// byte, ASCII or not, as it is. Each byte is judged on its low seven bits,
// where adding stays inside the byte, and bytes with the top bit set are
// masked out at the end.
func upper8(w uint64) uint64 {
	h := w & low7
	geA := h + (0x80-'a')*lsb // top bit set where h >= 'a'
	gtZ := h + (0x7f-'z')*lsb // top bit set where h > 'z'
	lower := geA &^ gtZ &^ w & msb
	return w ^ lower>>2 // 0x80>>2 == 0x20, the case bit
}

// upperASCII writes the ASCII uppercase of src to dst, which is as long.
func upperASCII(dst, src []byte) {
	i := 0
	for ; i+32 <= len(src); i += 32 {
		d, s := dst[i:i+32], src[i:i+32]
		binary.LittleEndian.PutUint64(d[0:], upper8(binary.LittleEndian.Uint64(s[0:])))
		binary.LittleEndian.PutUint64(d[8:], upper8(binary.LittleEndian.Uint64(s[8:])))
		binary.LittleEndian.PutUint64(d[16:], upper8(binary.LittleEndian.Uint64(s[16:])))
		binary.LittleEndian.PutUint64(d[24:], upper8(binary.LittleEndian.Uint64(s[24:])))
	}
	for ; i+8 <= len(src); i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], upper8(binary.LittleEndian.Uint64(src[i:])))
	}
	for ; i < len(src); i++ {
		c := src[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst[i] = c
	}
}

// asciiRun upper-cases the run of ASCII bytes at the start of src into dst,
// as far as dst has room, and returns how many bytes it did.
func asciiRun(dst, src []byte) int {
	n := min(len(dst), len(src))
	i := 0
	for ; i+32 <= n; i += 32 {
		s := src[i : i+32]
		w0 := binary.LittleEndian.Uint64(s[0:])
		w1 := binary.LittleEndian.Uint64(s[8:])
		w2 := binary.LittleEndian.Uint64(s[16:])
		w3 := binary.LittleEndian.Uint64(s[24:])
		if (w0|w1|w2|w3)&msb != 0 {
			break
		}
		d := dst[i : i+32]
		binary.LittleEndian.PutUint64(d[0:], upper8(w0))
		binary.LittleEndian.PutUint64(d[8:], upper8(w1))
		binary.LittleEndian.PutUint64(d[16:], upper8(w2))
		binary.LittleEndian.PutUint64(d[24:], upper8(w3))
	}
	for ; i+8 <= n; i += 8 {
		w := binary.LittleEndian.Uint64(src[i:])
		if w&msb != 0 {
			break
		}
		binary.LittleEndian.PutUint64(dst[i:], upper8(w))
	}
	for ; i < n; i++ {
		c := src[i]
		if c >= utf8.RuneSelf {
			break
		}
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst[i] = c
	}
	return i
}
