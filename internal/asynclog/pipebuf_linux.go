package asynclog

// pipeBuf is PIPE_BUF: the most bytes a write to a pipe puts in it whole
// or not at all, never in part.
const pipeBuf = 4096
