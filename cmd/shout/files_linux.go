package main

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// roomAtEnd tells whether a byte written at end, the end of f, a regular
// file, would go, writing none: past the file size limit (ulimit -f) it
// would not, and on a full disk the system refuses to keep a place for
// it (fallocate, keeping the file's size). Its content and size stay as
// they were, whoever else writes to it meanwhile. A file system that
// keeps no places is tried with a byte written (byteAtEnd).
func roomAtEnd(f *os.File, end int64) error {
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_FSIZE, &lim) == nil && lim.Cur != unix.RLIM_INFINITY && uint64(end) >= lim.Cur {
		return &fs.PathError{Op: "write", Path: f.Name(), Err: unix.EFBIG}
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	var ferr error
	rc.Control(func(fd uintptr) {
		for ferr = unix.EINTR; ferr == unix.EINTR; {
			ferr = fallocate(int(fd), unix.FALLOC_FL_KEEP_SIZE, end, 1)
		}
	})
	switch {
	case ferr == nil:
		return nil
	case errors.Is(ferr, unix.EOPNOTSUPP), errors.Is(ferr, unix.ENOSYS):
		return byteAtEnd(f)
	}
	return &fs.PathError{Op: "write", Path: f.Name(), Err: ferr}
}

// fallocate is unix.Fallocate; a test plays a file system without it.
var fallocate = unix.Fallocate
