//go:build unix

package server_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/text/transform"

	"shout/internal/certs"
	"shout/internal/shouttest"
	"shout/server"
)

// blowUp answers each byte with blowUpLen copies of it: a reply far
// larger than the read that asked for it, so that the server has read all
// that its client sent when the reply gets stuck. (With replies the size
// of their input, the input behind a stuck reply lies unread, and the
// kernel resets a socket closed with input unread, whatever the server
// does.)
type blowUp struct{ transform.NopResetter }

const blowUpLen = server.MaxExpansionLimit

func (blowUp) MaxExpansion() int { return blowUpLen }

func (blowUp) Transform(dst, src []byte, _ bool) (nDst, nSrc int, err error) {
	n := min(len(src), len(dst)/blowUpLen)
	for i, b := range src[:n] {
		d := dst[i*blowUpLen : (i+1)*blowUpLen]
		for j := range d {
			d[j] = b
		}
	}
	if n < len(src) {
		err = transform.ErrShortDst
	}
	return n * blowUpLen, n, err
}

// A client dropped for taking none of its reply for WriteTimeout reads a
// reset once it reads, not what was queued for it and then end of file:
// that is a reply cut short it cannot tell from a whole one, and the
// kernel held what was queued, up to a send buffer, on a socket no limit
// counted any more. Its 16 bytes' reply is 1 MiB, far more than the
// buffers between hold, and it sends nothing more: the server has read
// all of its input when it drops it. Over TLS from a Listener that wraps
// what it accepts (tls.NewListener), the socket beneath is reset too.
func TestWriteTimeoutResets(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{
		{"tcp", false},
		{"tls", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shouttest.CheckFDs(t)
			obs := newFuzzObserver()
			ln := listenSmall(t)
			var sl net.Listener = ln
			if tc.tls {
				store, err := certs.SelfSigned([]string{"127.0.0.1"})
				if err != nil {
					t.Fatal(err)
				}
				sl = tls.NewListener(ln, &tls.Config{GetCertificate: store.GetCertificate})
			}
			// A client the machine starves may be dropped before it
			// reads: it reads only once it has been, whenever that is.
			serveOn(t, &server.Server{Observer: obs, Transformer: blowUp{}, WriteTimeout: 100 * time.Millisecond}, sl)
			d := &net.Dialer{Timeout: bound, Control: func(_, _ string, rc syscall.RawConn) (err error) {
				rc.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 16<<10) })
				return err
			}}
			c, err := d.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			remote := c.LocalAddr().String()
			if tc.tls {
				c = tls.Client(c, &tls.Config{InsecureSkipVerify: true})
			}
			const sent = "0123456789abcdef"
			c.SetDeadline(time.Now().Add(bound))
			if _, err := io.WriteString(c, sent); err != nil {
				t.Fatal(err)
			}
			obs.waitClose(t, remote)
			obs.mu.Lock()
			ci := obs.closes[remote]
			obs.mu.Unlock()
			if ci.Reason != server.ReasonWriteTimeout {
				t.Fatalf("closed for %v (%v), want write timeout", ci.Reason, ci.Err)
			}
			if ci.BytesIn != int64(len(sent)) {
				t.Fatalf("the server read %d bytes of %d: the close found input unread", ci.BytesIn, len(sent))
			}
			c.SetDeadline(time.Now().Add(bound))
			n, err := io.Copy(io.Discard, c)
			if err == nil {
				err = io.EOF
			}
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("the client read %d bytes of the reply, then %v; want a reset", n, err)
			}
		})
	}
}
