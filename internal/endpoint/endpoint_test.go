package endpoint

import (
	"errors"
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want []Endpoint
	}{
		{"127.0.0.1:8080", []Endpoint{{Network: "tcp", Address: "127.0.0.1:8080"}, {Network: "udp", Address: "127.0.0.1:8080"}}},
		{"8080", []Endpoint{{Network: "tcp", Address: "127.0.0.1:8080"}, {Network: "udp", Address: "127.0.0.1:8080"}}},
		{"tcp://[::1]:0", []Endpoint{{Network: "tcp", Address: "[::1]:0"}}},
		{"udp://localhost:9", []Endpoint{{Network: "udp", Address: "localhost:9"}}},
		{"unix:///tmp/shout.sock", []Endpoint{{Network: "unix", Address: "/tmp/shout.sock"}}},
		{"tls://127.0.0.1:8443", []Endpoint{{Network: "tcp", Address: "127.0.0.1:8443", TLS: true}}},
		{":8080", []Endpoint{{Network: "tcp", Address: ":8080"}, {Network: "udp", Address: ":8080"}}},
	}
	for _, tc := range tests {
		got, err := Parse(tc.in, "tcp", "udp")
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "localhost", "http://x:1", "unix://", "127.0.0.1:99999", "127.0.0.1:", "[::1:80", "127.0.0.1:nope"} {
		if got, err := Parse(in, "tcp"); !errors.Is(err, ErrBadAddress) {
			t.Errorf("Parse(%q) = %v, %v; want ErrBadAddress", in, got, err)
		}
	}
	if s := (Endpoint{Network: "unix", Address: "/tmp/s"}).String(); s != "unix:///tmp/s" {
		t.Errorf("String = %q", s)
	}
	if s := (Endpoint{Network: "tcp", Address: "127.0.0.1:8443", TLS: true}).String(); s != "tls://127.0.0.1:8443" {
		t.Errorf("String = %q", s)
	}
}
