//go:build race

package fastlog

const raceEnabled = true
