package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// MaxDatagram is the largest UDP payload over IPv4.
const MaxDatagram = 65507

// DatagramResult counts what Datagrams did.
type DatagramResult struct {
	Sent, Answered, Lost, Retries int
}

// Datagrams sends each non-blank line of in as one datagram on c, without
// its newline, as the lesson's UDP client does, and writes each reply to
// out on a line of its own. A reply that does not come within timeout is
// asked for again, up to retries more times; then the line is reported to
// warn as lost and the next one is sent. It never waits longer than
// (retries+1)*timeout for a line.
func Datagrams(c net.Conn, in io.Reader, out, warn io.Writer, timeout time.Duration, retries int) (DatagramResult, error) {
	addr := c.RemoteAddr().String()
	var res DatagramResult
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), MaxDatagram+2) // room for "\r\n"
	reply := make([]byte, 1<<17)
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := sc.Bytes()
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		res.Sent++
		n, tries, err := exchangeDatagram(c, line, reply, timeout, retries)
		if err != nil {
			return res, err
		}
		res.Retries += tries - 1
		answered := n >= 0
		if answered {
			if _, err := out.Write(append(reply[:n], '\n')); err != nil {
				return res, fmt.Errorf("write output: %w", err)
			}
		}
		if answered {
			res.Answered++
		} else {
			res.Lost++
			fmt.Fprintf(warn, "shout: line %d: no reply from %s after %d tries of %v: lost\n", lineNo, addr, retries+1, timeout)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return res, fmt.Errorf("a line is longer than %d bytes, the most one datagram carries", MaxDatagram)
		}
		return res, fmt.Errorf("read input: %w", err)
	}
	return res, nil
}

// exchangeDatagram sends msg and waits timeout for a reply into buf,
// sending again up to retries times. It returns the reply's length, or -1
// if none came, and how many times it sent.
func exchangeDatagram(c net.Conn, msg, buf []byte, timeout time.Duration, retries int) (n, tries int, err error) {
	addr := c.RemoteAddr().String()
	for tries = 1; tries <= retries+1; tries++ {
		if _, err := c.Write(msg); err != nil {
			return -1, tries, wrap("send", addr, err)
		}
		c.SetReadDeadline(time.Now().Add(timeout))
		n, err := c.Read(buf)
		if err == nil {
			return n, tries, nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return -1, tries, wrap("receive", addr, err)
		}
	}
	return -1, tries - 1, nil
}
