package endpoint_test

import (
	"fmt"

	"shout/endpoint"
)

// Addresses as shout's commands take them: without a scheme, one
// endpoint for each network asked for.
func ExampleParse() {
	for _, s := range []string{"127.0.0.1:8080", "8080", "tls://[::1]:8443", "unix:///tmp/shout.sock", "udp://127.0.0.1:99999"} {
		eps, err := endpoint.Parse(s, "tcp", "udp")
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(s, "→", eps)
	}
	// Output:
	// 127.0.0.1:8080 → [tcp://127.0.0.1:8080 udp://127.0.0.1:8080]
	// 8080 → [tcp://127.0.0.1:8080 udp://127.0.0.1:8080]
	// tls://[::1]:8443 → [tls://[::1]:8443]
	// unix:///tmp/shout.sock → [unix:///tmp/shout.sock]
	// bad address "udp://127.0.0.1:99999": port "99999" is not a number from 0 to 65535
}
