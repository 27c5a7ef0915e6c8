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
		{"127.0.0.1:8080", []Endpoint{{"tcp", "127.0.0.1:8080"}, {"udp", "127.0.0.1:8080"}}},
		{"8080", []Endpoint{{"tcp", "127.0.0.1:8080"}, {"udp", "127.0.0.1:8080"}}},
		{"tcp://[::1]:0", []Endpoint{{"tcp", "[::1]:0"}}},
		{"udp://localhost:9", []Endpoint{{"udp", "localhost:9"}}},
		{"unix:///tmp/shout.sock", []Endpoint{{"unix", "/tmp/shout.sock"}}},
		{":8080", []Endpoint{{"tcp", ":8080"}, {"udp", ":8080"}}},
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
	if s := (Endpoint{"unix", "/tmp/s"}).String(); s != "unix:///tmp/s" {
		t.Errorf("String = %q", s)
	}
}
