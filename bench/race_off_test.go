//go:build !race

package bench

// raceDetector is whether the tests run under -race, whose shadow memory
// and slowdown make memory and CPU measurements meaningless.
const raceDetector = false
