package client

import "testing"

func TestVisible(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		want   string
	}{
		{"text", []string{"HELLO EGON 哈哈哈\tSTRASSE\n"}, "HELLO EGON 哈哈哈\tSTRASSE\n"},
		{"clear screen", []string{"\x1b[2J\x1b[H"}, "^[[2J^[[H"},
		{"bell, NUL, DEL", []string{"\a\x00\x7f"}, "^G^@^?"},
		{"CRLF is a line end", []string{"A\r\nB\r", "\nC"}, "A\nB\nC"},
		{"lone CR", []string{"A\rB", "\r"}, "A^MB^M"},
		{"C1 control", []string{"\u009b2J"}, "M-^[2J"},
		{"not UTF-8", []string{"\xff\x9b\xe4"}, "M-^?M-^[M-d"},
		{"character split between reads", []string{"\xe5\x93", "\x88!"}, "哈!"},
		// A server could reorder its reply on a terminal that does bidi.
		{"bidi and zero-width controls", []string{"A\u202eEVIL\u2066B\u200fC\u200b\n"}, "AM-bM-^@M-.EVILM-bM-^AM-&BM-bM-^@M-^OCM-bM-^@M-^K\n"},
		{"line separator", []string{"A\u2028B"}, "AM-bM-^@M-(B"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v visible
			var got []byte
			for i, c := range tc.chunks {
				got = v.append(got, []byte(c), i == len(tc.chunks)-1)
			}
			if string(got) != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
