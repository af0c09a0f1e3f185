package sim

import (
	"strconv"

	"github.com/loadprof/loadprof/payloads"
)

// This file duplicates, name for name, what the V2 REST work (branch
// h-v2rest, sim/v2.go) defines for the simulator's V2 routes, REST and
// gRPC alike: when both are merged, this file goes and the gRPC service
// uses that one.

// v2Datatypes maps the signature's TF dtypes to V2 datatypes.
var v2Datatypes = map[string]string{
	"DT_FLOAT": "FP32", "DT_DOUBLE": "FP64", "DT_HALF": "FP16", "DT_BFLOAT16": "BF16",
	"DT_INT8": "INT8", "DT_INT16": "INT16", "DT_INT32": "INT32", "DT_INT64": "INT64",
	"DT_UINT8": "UINT8", "DT_UINT16": "UINT16", "DT_UINT32": "UINT32", "DT_UINT64": "UINT64",
	"DT_STRING": "BYTES", "DT_BOOL": "BOOL",
}

// v2Platform is the platform the simulated model reports in its V2
// metadata.
const v2Platform = "loadprof-sim"

// v2Metadata is the simulated model's V2 metadata: its signature's inputs
// and outputs with V2 datatypes. A tensor of any shape (a nil
// TensorSpec.Shape) has a nil Shape (V2 metadata cannot say "any rank").
func (s *Server) v2Metadata() payloads.V2ModelMetadata {
	specs := func(in []TensorSpec) []payloads.V2TensorMetadata {
		out := make([]payloads.V2TensorMetadata, len(in))
		for i, sp := range in {
			out[i] = payloads.V2TensorMetadata{Name: sp.Name, Datatype: v2Datatypes[sp.DType], Shape: sp.Shape}
		}
		return out
	}
	return payloads.V2ModelMetadata{
		Name:     s.cfg.Model,
		Versions: []string{strconv.FormatInt(s.cfg.Version, 10)},
		Platform: v2Platform,
		Inputs:   specs(s.cfg.Signature.Inputs),
		Outputs:  specs(s.cfg.Signature.Outputs),
	}
}
