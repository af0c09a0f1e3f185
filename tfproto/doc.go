// Package tfproto holds the Go code generated from loadprof's own minimal
// copies of the TensorFlow and TensorFlow Serving protos in proto/: the
// messages and the two PredictionService methods a predict load needs, with
// the official package names, field names and numbers (wire compatibility
// is what matters). Regenerate with scripts/genproto.sh; never edit the
// .pb.go files by hand.
package tfproto
