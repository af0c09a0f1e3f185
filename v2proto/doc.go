// Package v2proto holds the Go code generated from loadprof's own minimal
// copy of the Open Inference Protocol (KServe V2) gRPC API in
// proto/inference/: inference.GRPCInferenceService's readiness, model
// metadata and ModelInfer calls, with the upstream package, message and
// field names and numbers, so that Triton, KServe, MLServer and OpenVINO
// Model Server read what loadprof sends. Regenerate with
// scripts/genproto.sh; never edit the .pb.go files by hand.
package v2proto
