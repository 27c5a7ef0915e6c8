package bench_test

import "shout/bench"

// Config stays comparable, as it was before Report.NameSettings: a
// program's cfg == (bench.Config{}), or a map keyed by Config, compiles.
// A func, map or slice field fails this file's build.
var _ = bench.Config{} == bench.Config{}
