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
	f := runsFile(t, unix.F_SEAL_SHRINK, 3)
	if err := tryJSONOut(f); err != nil {
		t.Errorf("a file that takes appends but no truncation: %v", err)
	}
	asItWas(t, f, 3)
}

// On a file system that keeps no places (fallocate unsupported: NFS,
// some FUSE), --json's stdout is tried with a byte written at its end and
// cut off again: one that takes it is left as it was, its offset too; one
// that refuses it (here a file sealed against growing) fails the start.
// Nothing tested that: roomAtEnd passing such a file untried passed every
// test (review54), and a full disk there was found only after the run.
func TestJSONOutWithoutFallocate(t *testing.T) {
	fa := fallocate
	t.Cleanup(func() { fallocate = fa })
	fallocate = func(int, uint32, int64, int64) error { return unix.EOPNOTSUPP }
	for _, tc := range []struct {
		name string
		seal int
		ok   bool
	}{
		{"room", 0, true},
		{"cannot grow", unix.F_SEAL_GROW, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := runsFile(t, tc.seal, 1)
			if err := tryJSONOut(f); (err == nil) != tc.ok {
				t.Errorf("tryJSONOut: %v; want it to fail: %v", err, !tc.ok)
			}
			asItWas(t, f, 1)
		})
	}
}

// runsFile is a file holding "{}\n", an earlier run's JSON, sealed with
// seals (if any), at offset at; it is closed as t ends.
func runsFile(t *testing.T, seals int, at int64) *os.File {
	t.Helper()
	fd, err := unix.MemfdCreate("runs.json", unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Skip("memfd:", err)
	}
	f := os.NewFile(uintptr(fd), "runs.json")
	t.Cleanup(func() { f.Close() })
	if _, err := io.WriteString(f, "{}\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(at, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if seals != 0 {
		if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
			t.Skip("sealing:", err)
		}
	}
	return f
}

// asItWas fails t unless f, a runsFile, still holds "{}\n" alone, its
// offset at at.
func asItWas(t *testing.T, f *os.File, at int64) {
	t.Helper()
	b := make([]byte, 16)
	n, err := f.ReadAt(b, 0)
	if err != io.EOF || string(b[:n]) != "{}\n" {
		t.Errorf("the file became %q, %v; want it as it was, %q", b[:n], err, "{}\n")
	}
	if got, err := f.Seek(0, io.SeekCurrent); err != nil || got != at {
		t.Errorf("offset %d, %v; want %d, where it was", got, err, at)
	}
}
