//go:build race

package vhdx

// raceEnabled reports whether the tests run under the race detector.
const raceEnabled = true
