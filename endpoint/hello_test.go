package endpoint_test

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"shout/endpoint"
	"shout/internal/shouttest"
	"shout/server"
)

// record is a TLS record of typ holding payload.
func record(typ byte, payload ...byte) []byte {
	return append([]byte{typ, 3, 3, byte(len(payload) >> 8), byte(len(payload))}, payload...)
}

const (
	recordHandshake    = 0x16
	recordChangeCipher = 0x14
	recordAlert        = 0x15
)

// clientHello is the first flight of a Go client with cfg: its hello,
// as it comes on the wire.
func clientHello(t *testing.T, cfg *tls.Config) []byte {
	t.Helper()
	cli, srv := net.Pipe()
	defer srv.Close()
	go func() {
		defer cli.Close()
		tls.Client(cli, cfg).Handshake() // fails when srv closes
	}()
	srv.SetReadDeadline(time.Now().Add(bound))
	head := make([]byte, 5)
	if _, err := readFull(srv, head); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(head[3])<<8|int(head[4]))
	if _, err := readFull(srv, body); err != nil {
		t.Fatal(err)
	}
	return append(head, body...)
}

func readFull(c net.Conn, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := c.Read(p[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// handshakeFails sends sent to a TLS listener made with opts, each part
// after the first once the server has answered the one before, and
// returns the error its handshake failed with (within half the tests'
// bound: it may wait for more).
func handshakeFails(t *testing.T, opts endpoint.Options, sent ...[]byte) string {
	t.Helper()
	opts.HandshakeTimeout = bound / 2
	addr, ev := serve(t, opts, true, &server.Server{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, part := range sent {
		if i > 0 {
			c.SetReadDeadline(time.Now().Add(bound))
			if _, err := c.Read(make([]byte, 1)); err != nil {
				t.Fatalf("no answer to part %d: %v", i, err)
			}
		}
		if _, err := c.Write(part); err != nil {
			t.Fatal(err)
		}
	}
	cl := ev.next(t, ev.closes, "close")
	if cl.Reason != server.ReasonHandshake || cl.Err == nil {
		t.Fatalf("closed for %v (%v), want %v", cl.Reason, cl.Err, server.ReasonHandshake)
	}
	return cl.Err.Error()
}

// A handshake message the client sends in the clear that declares more
// than 16 KiB is refused at once, saying so, however the records split
// it: a hello (crypto/tls reads one of 64 KiB), and once the server has
// answered, a certificate it did not ask for (256 KiB), a TLS 1.3 hello
// sent again after a HelloRetryRequest. A client that declared one and
// sent it slowly, or not at all, held crypto/tls's buffer for it until
// the handshake timeout, having done no cryptography: 300 TLS 1.2
// clients whose hello was followed by the header of a 256 KiB
// certificate and all but its last byte held 375 KB each (110 MB), where
// a client that stops after its hello holds some 15 KB. The log said
// "no handshake within 10s".
func TestTLSHandshakeMessageTooLong(t *testing.T) {
	hello12 := clientHello(t, &tls.Config{MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true})
	// X25519's key share, to a server that takes P-256 alone: it asks
	// for another hello.
	helloX := clientHello(t, &tls.Config{MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}, InsecureSkipVerify: true})
	for _, tc := range []struct {
		name string
		p256 bool // the server takes P-256 alone
		sent []byte
		want string
	}{
		{"a hello, in one record", false, record(recordHandshake, 1, 0, 0xff, 0xfc), "the client's hello (ClientHello) is 65532 bytes long, longer than the 16384 accepted"},
		{"a hello, its header a byte a record", false, bytes.Join([][]byte{record(recordHandshake, 1), record(recordHandshake, 0), record(recordHandshake, 0xff), record(recordHandshake, 0xfc)}, nil), "the client's hello (ClientHello) is 65532 bytes long"},
		{"a certificate not asked for, after a TLS 1.2 hello", false, append(append([]byte{}, hello12...), record(recordHandshake, 11, 3, 0xff, 0xfc)...), "the client's Certificate of 262140 bytes is longer than the 16384 accepted"},
		{"a hello again after a HelloRetryRequest, sent at once", true, append(append(append([]byte{}, helloX...), record(recordChangeCipher, 1)...), record(recordHandshake, 1, 0, 0xff, 0xfc)...), "the client's hello (ClientHello) is 65532 bytes long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, _ := tlsOptions(t, "")
			if tc.p256 {
				opts.TLS.CurvePreferences = []tls.CurveID{tls.CurveP256}
			}
			if msg := handshakeFails(t, opts, tc.sent); !strings.HasPrefix(msg, "tls handshake: "+tc.want) {
				t.Errorf("handshake failed with %q, want %q", msg, tc.want)
			}
		})
	}
	// As a client does: each part once the server has answered.
	for _, tc := range []struct {
		name string
		p256 bool
		sent [][]byte
		want string
	}{
		{"a certificate not asked for, after the server's answer", false, [][]byte{hello12, record(recordHandshake, 11, 3, 0xff, 0xfc)}, "the client's Certificate of 262140 bytes is longer than the 16384 accepted"},
		{"a hello again after a HelloRetryRequest", true, [][]byte{helloX, append(record(recordChangeCipher, 1), record(recordHandshake, 1, 0, 0xff, 0xfc)...)}, "the client's hello (ClientHello) is 65532 bytes long"},
		// The header of the message before it (a ClientKeyExchange of 2
		// bytes) split across two records: its body is read from where
		// the header ends.
		{"a certificate after a message whose header two records split", false, [][]byte{hello12, append(record(recordHandshake, 16, 0), record(recordHandshake, 0, 2, 1, 0, 11, 3, 0xff, 0xfc)...)}, "the client's Certificate of 262140 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, _ := tlsOptions(t, "")
			if tc.p256 {
				opts.TLS.CurvePreferences = []tls.CurveID{tls.CurveP256}
			}
			if msg := handshakeFails(t, opts, tc.sent...); !strings.HasPrefix(msg, "tls handshake: "+tc.want) {
				t.Errorf("handshake failed with %q, want %q", msg, tc.want)
			}
		})
	}
}

// Messages of 16 KiB, the longest taken, are read whole, and so is a
// longer certificate where the listener asks for one (mTLS): these fail
// as crypto/tls finds them (zeros), not for their length.
func TestTLSHandshakeMessagesTaken(t *testing.T) {
	hello12 := clientHello(t, &tls.Config{MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true})
	hello := append([]byte{1, 0, 0x40, 0}, make([]byte, 16384)...)
	cert := append([]byte{11, 0, 0x4e, 0x20}, make([]byte, 20000)...)
	for _, tc := range []struct {
		name     string
		clientCA bool
		sent     []byte
	}{
		{"a hello of 16 KiB", false, append(record(recordHandshake, hello[:16000]...), record(recordHandshake, hello[16000:]...)...)},
		{"a certificate of 20,000 bytes asked for", true, append(append(append([]byte{}, hello12...), record(recordHandshake, cert[:16000]...)...), record(recordHandshake, cert[16000:]...)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := ""
			if tc.clientCA {
				ca = newCA(t).file
			}
			opts, _ := tlsOptions(t, ca)
			if msg := handshakeFails(t, opts, tc.sent); strings.Contains(msg, "longer than") || strings.Contains(msg, "no handshake within") {
				t.Errorf("handshake failed with %q; want crypto/tls's refusal of what it read whole", msg)
			}
		})
	}
}

// Handshakes whose client sends records in the clear after its
// ChangeCipherSpec are served: TLS 1.2's Finished, encrypted, in a
// resumed session too; a TLS 1.3 hello sent again after a
// HelloRetryRequest, with the ChangeCipherSpec before it.
func TestTLSHandshakesAroundChangeCipherSpec(t *testing.T) {
	for _, tc := range []struct {
		name   string
		server func(*tls.Config)
		client func(*tls.Config)
		twice  bool // the second resumes the first's session
	}{
		{"TLS 1.2", nil, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }, false},
		{"TLS 1.2 resumed, ChaCha20", nil, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12; resumeChaCha(c) }, true},
		// The client offers TLS 1.3 as well, and the server speaks 1.2
		// alone: its own config's, or the one its GetConfigForClient
		// gives.
		{"TLS 1.2 alone at the server, resumed", func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }, resumeChaCha, true},
		{"TLS 1.2 alone at the server as GetConfigForClient says, resumed", func(c *tls.Config) {
			only12 := c.Clone()
			only12.MaxVersion = tls.VersionTLS12
			c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return only12, nil }
		}, resumeChaCha, true},
		{"TLS 1.3 after a HelloRetryRequest", func(c *tls.Config) { c.CurvePreferences = []tls.CurveID{tls.CurveP256} },
			func(c *tls.Config) { c.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, client := tlsOptions(t, "")
			if tc.server != nil {
				tc.server(opts.TLS)
			}
			addr, _ := serve(t, opts, true, &server.Server{})
			cfg := client.Clone()
			tc.client(cfg)
			for i := range 1 + btoi(tc.twice) {
				c, err := tls.Dial("tcp", addr, cfg)
				if err != nil {
					t.Fatalf("handshake %d: %v", i+1, err)
				}
				if got := exchange(t, c, "hi\n"); got != "HI\n" {
					t.Errorf("handshake %d: got %q", i+1, got)
				}
				if st := c.ConnectionState(); i == 1 && !st.DidResume || tc.twice && st.Version != tls.VersionTLS12 {
					t.Errorf("handshake %d: %s, resumed %v; want TLS 1.2, the second resumed", i+1, tls.VersionName(st.Version), st.DidResume)
				}
				c.Close()
			}
		})
	}
}

// resumeChaCha makes a client that offers TLS 1.3 and 1.2 with
// ChaCha20 (whose records have no explicit nonce: the encrypted Finished
// begins with bytes of no pattern) and resumes its sessions.
func resumeChaCha(c *tls.Config) {
	c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305}
	c.ClientSessionCache = tls.NewLRUClientSessionCache(1)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A warning alert, which crypto/tls drops and reads on past (TLS 1.2's,
// and any before the hello), does not end the watch: a client that sent
// one first declared a hello of 64 KiB, or after its TLS 1.2 hello a
// certificate of 256 KiB, unwatched, and held the server's buffer for it
// until the handshake timeout.
func TestTLSHandshakeMessageTooLongAfterAWarning(t *testing.T) {
	hello12 := clientHello(t, &tls.Config{MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true})
	warning := record(recordAlert, 1, 90) // user_canceled, a warning
	for _, tc := range []struct {
		name string
		sent [][]byte
		want string
	}{
		{"a hello after a warning", [][]byte{append(append([]byte{}, warning...), record(recordHandshake, 1, 0, 0xff, 0xfc)...)}, "the client's hello (ClientHello) is 65532 bytes long"},
		{"a certificate after a warning, after a TLS 1.2 hello", [][]byte{hello12, append(append([]byte{}, warning...), record(recordHandshake, 11, 3, 0xff, 0xfc)...)}, "the client's Certificate of 262140 bytes is longer than the 16384 accepted"},
		{"a warning inside a certificate's header", [][]byte{hello12, bytes.Join([][]byte{record(recordHandshake, 11, 3), warning, record(recordHandshake, 0xff, 0xfc)}, nil)}, "the client's Certificate of 262140 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, _ := tlsOptions(t, "")
			if msg := handshakeFails(t, opts, tc.sent...); !strings.HasPrefix(msg, "tls handshake: "+tc.want) {
				t.Errorf("handshake failed with %q, want %q", msg, tc.want)
			}
		})
	}
}

// A client whose certificate chain is longer than 16 KiB, to a listener
// that asks for one (--client-ca), resumes its session: the ticket in
// its hello holds that chain (crypto/tls's session state), so the hello
// is as long. BoringSSL's servers, which ask for one, take every message
// as long as a certificate.
func TestTLSResumesWithALongClientCertificate(t *testing.T) {
	authority := newCA(t)
	long := authority.clientWith(t, "long", make([]byte, 20000))
	opts, client := tlsOptions(t, authority.file)
	addr, ev := serve(t, opts, true, &server.Server{})
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			cfg := client.Clone()
			cfg.MinVersion, cfg.MaxVersion = v, v
			cfg.Certificates = []tls.Certificate{long}
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
			for i := range 2 {
				c, err := tls.Dial("tcp", addr, cfg)
				if err != nil {
					t.Fatalf("handshake %d: %v (the server: %v)", i+1, err, refusal(t, ev))
				}
				// The reply (and TLS 1.3's ticket, which comes before it).
				got := exchange(t, c, "hi\n")
				if st := c.ConnectionState(); got != "HI\n" || st.DidResume != (i == 1) {
					t.Errorf("handshake %d: got %q, resumed %v", i+1, got, st.DidResume)
				}
				c.Close()
			}
		})
	}
}

// refusal is the error of the next connection the server closed for
// one, past those it closed without (a bounded few).
func refusal(t *testing.T, ev *events) error {
	for range 4 {
		if cl := ev.next(t, ev.closes, "close"); cl.Err != nil {
			return cl.Err
		}
	}
	return nil
}

// A session begun on one TLS listener resumes on another that Listen
// opened with the same options (tls://127.0.0.1 and tls://[::1], say),
// as their one config's session ticket keys let it: the handshake
// watch's config, one a listener, had keys of its own.
func TestTLSResumesAcrossListeners(t *testing.T) {
	opts, client := tlsOptions(t, "")
	ep := endpoint.Endpoint{Network: "tcp", Address: "127.0.0.1:0", TLS: true}
	lns, _, err := opts.Listen([]endpoint.Endpoint{ep, ep})
	if err != nil {
		t.Fatal(err)
	}
	for _, ln := range lns {
		shouttest.Serve(t, &server.Server{Logger: slog.New(slog.DiscardHandler)}, ln)
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			cfg := client.Clone()
			cfg.MinVersion, cfg.MaxVersion = v, v
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
			for i, ln := range lns {
				c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
				if err != nil {
					t.Fatalf("listener %d: %v", i+1, err)
				}
				got := exchange(t, c, "hi\n") // (and TLS 1.3's ticket, before it)
				if st := c.ConnectionState(); got != "HI\n" || st.DidResume != (i == 1) {
					t.Errorf("listener %d: got %q, resumed %v", i+1, got, st.DidResume)
				}
				c.Close()
			}
		})
	}
}

// The watch's config hands the handshake to the caller's own, so what a
// program does with its tls.Config reaches every connection as it did
// before the watch: session ticket keys set after Listen are the ones
// used, by the listeners of every Listen of it. (With a copy of the
// config for each Listen, the copy's keys sealed and opened every
// ticket, and SetSessionTicketKeys after Listen reached no connection.)
func TestTLSWatchUsesTheCallersConfig(t *testing.T) {
	opts, client := tlsOptions(t, "")
	ep := []endpoint.Endpoint{{Network: "tcp", Address: "127.0.0.1:0", TLS: true}}
	var lns []net.Listener
	for range 2 {
		ln, _, err := opts.Listen(ep)
		if err != nil {
			t.Fatal(err)
		}
		shouttest.Serve(t, &server.Server{Logger: slog.New(slog.DiscardHandler)}, ln[0])
		lns = append(lns, ln[0])
	}
	dial := func(t *testing.T, cfg *tls.Config, ln net.Listener) bool {
		t.Helper()
		c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := exchange(t, c, "hi\n"); got != "HI\n" { // (and TLS 1.3's ticket, before it)
			t.Fatalf("got %q", got)
		}
		return c.ConnectionState().DidResume
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			cfg := client.Clone()
			cfg.MinVersion, cfg.MaxVersion = v, v
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
			for i, keys := range [][32]byte{{1, byte(v)}, {2, byte(v)}} {
				opts.TLS.SetSessionTicketKeys([][32]byte{keys})
				if dial(t, cfg, lns[0]) {
					t.Errorf("keys %d: a session resumed after SetSessionTicketKeys replaced the keys that sealed it", i+1)
				}
				if !dial(t, cfg, lns[1]) {
					t.Errorf("keys %d: a session sealed with the keys set after Listen not resumed on another Listen's listener", i+1)
				}
			}
		})
	}
}

// Go's clients are served through the watch, a session resumed too:
// TLS 1.2 and 1.3, each curve alone (the post-quantum key shares, of up
// to 1,665 bytes, with them), every curve at once, and to a server that
// takes P-521 alone, after a HelloRetryRequest (whose resumption sends
// its binders again).
func TestTLSClientsServedThroughTheWatch(t *testing.T) {
	every := []tls.CurveID{tls.SecP384r1MLKEM1024, tls.SecP256r1MLKEM768, tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521}
	for _, p521 := range []bool{false, true} {
		opts, client := tlsOptions(t, "")
		if p521 {
			opts.TLS.CurvePreferences = []tls.CurveID{tls.CurveP521}
		}
		lns, _, err := opts.Listen([]endpoint.Endpoint{{Network: "tcp", Address: "127.0.0.1:0", TLS: true}})
		if err != nil {
			t.Fatal(err)
		}
		shouttest.Serve(t, &server.Server{Logger: slog.New(slog.DiscardHandler)}, lns[0]) // (serve's events would fill)
		addr := lns[0].Addr().String()
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			for _, curves := range append([][]tls.CurveID{every}, splitCurves(every)...) {
				t.Run(fmt.Sprintf("%s %v, the server P-521 alone %v", tls.VersionName(v), curves, p521), func(t *testing.T) {
					cfg := client.Clone()
					cfg.MinVersion, cfg.MaxVersion = v, v
					cfg.CurvePreferences = curves
					cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
					if p521 && !slices.Contains(curves, tls.CurveP521) {
						t.Skip("no curve in common")
					}
					if v == tls.VersionTLS12 && !slices.ContainsFunc(curves, func(c tls.CurveID) bool { return c < 100 }) {
						t.Skip("no post-quantum key exchange in TLS 1.2")
					}
					for i := range 2 {
						c, err := tls.Dial("tcp", addr, cfg)
						if err != nil {
							t.Fatalf("handshake %d: %v", i+1, err)
						}
						got := exchange(t, c, "hi\n")
						if st := c.ConnectionState(); got != "HI\n" || st.DidResume != (i == 1) {
							t.Errorf("handshake %d: got %q, resumed %v", i+1, got, st.DidResume)
						}
						c.Close()
					}
				})
			}
		}
	}
}

func splitCurves(curves []tls.CurveID) [][]tls.CurveID {
	var each [][]tls.CurveID
	for _, c := range curves {
		each = append(each, []tls.CurveID{c})
	}
	return each
}
