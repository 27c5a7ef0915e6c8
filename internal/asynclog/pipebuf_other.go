//go:build !linux && !windows

package asynclog

// pipeBuf is POSIX's least PIPE_BUF (_POSIX_PIPE_BUF, and PIPE_BUF on
// macOS and the BSDs): the most bytes a write to a pipe puts in it whole
// or not at all, never in part.
const pipeBuf = 512
