//go:build race

package servermetrics_test

// delayTolerance is how far the recovered network delay may be from the
// one the simulator held. Under -race every step of the client and the
// server runs several times slower and a busy machine's scheduling
// stalls land outside the server, so only the order of magnitude holds.
const delayTolerance = 0.5
