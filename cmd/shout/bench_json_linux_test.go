package main

import (
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestJSONOutTriedWithoutWriting: bench --json >> log tries the log with
// no byte written and cut off again, which cut off the bytes another
// writer appended meanwhile (tee -a, a second bench >> one log: 7 lines
// of 200000 lost under 40 benches), and which a file that grows but does
// not shrink (chattr +a) kept, bench refusing to run ("truncate
// /dev/stdout: operation not permitted"). Here that file is a memfd
// sealed against shrinking.
func TestJSONOutTriedWithoutWriting(t *testing.T) {
	fd, err := unix.MemfdCreate("runs.json", unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Skip("memfd:", err)
	}
	f := os.NewFile(uintptr(fd), "runs.json")
	defer f.Close()
	if _, err := io.WriteString(f, "{}\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK); err != nil {
		t.Skip("sealing:", err)
	}
	if err := tryJSONOut(f); err != nil {
		t.Errorf("a file that takes appends but no truncation: %v", err)
	}
	b := make([]byte, 16)
	n, err := f.ReadAt(b, 0)
	if err != io.EOF {
		t.Fatal(err)
	}
	if b = b[:n]; string(b) != "{}\n" {
		t.Errorf("the file became %q; want it as it was, %q", b, "{}\n")
	}
	if at, err := f.Seek(0, io.SeekCurrent); err != nil || at != 3 {
		t.Errorf("offset %d, %v; want 3, where it was", at, err)
	}
}
