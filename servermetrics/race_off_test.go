//go:build !race

package servermetrics_test

// delayTolerance is how far the recovered network delay may be from the
// one the simulator held: the 10%.
const delayTolerance = 0.1
