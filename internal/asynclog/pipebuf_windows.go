package asynclog

// pipeBuf is 0 on Windows, which promises no write to a pipe whole: the
// lines are written as they come, in one write.
const pipeBuf = 0
