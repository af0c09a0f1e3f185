package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/loadprof/loadprof/payloads"
	"github.com/loadprof/loadprof/v2proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// inferenceService is the simulator's Open Inference Protocol (KServe V2)
// inference.GRPCInferenceService, on the gRPC port beside TF Serving's
// PredictionService: the same model, signature, latency, stalls and
// errors.
type inferenceService struct {
	v2proto.UnimplementedGRPCInferenceServiceServer
	s *Server
}

// v2Resolve checks a V2 model name and version (empty: the latest) the
// way Triton does.
func (s *Server) v2Resolve(name, version string) error {
	if name != s.cfg.Model {
		return status.Errorf(codes.NotFound, "Request for unknown model: '%s' is not found", name)
	}
	if version != "" && version != strconv.FormatInt(s.cfg.Version, 10) {
		return status.Errorf(codes.NotFound, "Request for unknown model: '%s' version %s is not found", name, version)
	}
	return nil
}

func (v *inferenceService) ServerLive(context.Context, *v2proto.ServerLiveRequest) (*v2proto.ServerLiveResponse, error) {
	return &v2proto.ServerLiveResponse{Live: true}, nil
}

func (v *inferenceService) ServerReady(context.Context, *v2proto.ServerReadyRequest) (*v2proto.ServerReadyResponse, error) {
	return &v2proto.ServerReadyResponse{Ready: true}, nil
}

func (v *inferenceService) ModelReady(_ context.Context, req *v2proto.ModelReadyRequest) (*v2proto.ModelReadyResponse, error) {
	if err := v.s.v2Resolve(req.GetName(), req.GetVersion()); err != nil {
		return nil, err
	}
	return &v2proto.ModelReadyResponse{Ready: true}, nil
}

func (v *inferenceService) ModelMetadata(_ context.Context, req *v2proto.ModelMetadataRequest) (*v2proto.ModelMetadataResponse, error) {
	if err := v.s.v2Resolve(req.GetName(), req.GetVersion()); err != nil {
		return nil, err
	}
	return payloads.V2MetadataProto(v.s.v2Metadata()), nil
}

func (v *inferenceService) ModelInfer(ctx context.Context, req *v2proto.ModelInferRequest) (*v2proto.ModelInferResponse, error) {
	v.s.networkDelay()
	start := time.Now()
	resp, err := v.infer(ctx, req)
	v.s.metrics.request(req.GetModelName(), "ModelInfer", "GRPC", status.Code(err), time.Since(start))
	return resp, err
}

func (v *inferenceService) infer(ctx context.Context, req *v2proto.ModelInferRequest) (*v2proto.ModelInferResponse, error) {
	arrived := time.Now()
	s := v.s
	s.noteArrival(arrived)
	if want := s.cfg.Authorization; want != "" {
		md, _ := metadata.FromIncomingContext(ctx)
		if got := md.Get("authorization"); len(got) != 1 || got[0] != want {
			return nil, status.Error(codes.Unauthenticated, "missing or wrong authorization metadata")
		}
	}
	if err := s.v2Resolve(req.GetModelName(), req.GetModelVersion()); err != nil {
		return nil, err
	}
	inputs, err := payloads.V2InputsFromProto(req)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	sums, err := s.cfg.Signature.v2Sums(inputs, proto.Size(req))
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	sig := &s.cfg.Signature
	outName := sig.Outputs[0].Name
	for _, o := range req.GetOutputs() {
		if o.GetName() != outName {
			return nil, status.Errorf(codes.InvalidArgument, "unexpected inference output '%s' for model '%s'", o.GetName(), s.cfg.Model)
		}
	}
	if err := s.wait(ctx, arrived); err != nil {
		return nil, err
	}
	s.predicts.Add(1)
	if l := &s.cfg.Latency; l.ErrorRate > 0 && rand.Float64() < l.ErrorRate {
		return nil, status.Error(grpcCodeForHTTP(l.ErrorStatus), "simulated failure")
	}
	out := &payloads.V2Input{Name: outName, Datatype: "FP32", Shape: []int64{int64(len(sums))}, Floats: sums}
	// Raw requests get raw answers, as Triton gives them.
	one, err := (&payloads.V2Request{Inputs: []payloads.V2Input{*out}}).ToModelInferRequest("", "", payloads.V2ProtoOptions{Raw: len(req.GetRawInputContents()) > 0})
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	t := one.GetInputs()[0]
	return &v2proto.ModelInferResponse{
		ModelName: s.cfg.Model, ModelVersion: strconv.FormatInt(s.cfg.Version, 10), Id: req.GetId(),
		Outputs: []*v2proto.ModelInferResponse_InferOutputTensor{
			{Name: t.GetName(), Datatype: t.GetDatatype(), Shape: t.GetShape(), Contents: t.GetContents()},
		},
		RawOutputContents: one.GetRawInputContents(),
	}, nil
}

// v2Sums checks V2 inputs against the signature (names, datatypes,
// shapes, a common batch size) and returns the sum of each example's
// values, the simulated model's output (string lengths for BYTES).
func (sig *Signature) v2Sums(inputs []payloads.V2Input, requestBytes int) ([]float64, error) {
	if len(inputs) != len(sig.Inputs) {
		names := make([]string, len(inputs))
		for i, in := range inputs {
			names[i] = in.Name
		}
		return nil, fmt.Errorf("expected %d inputs but got %d inputs for model (%s; the model has %s)", len(sig.Inputs), len(inputs), strings.Join(names, ", "), sig.inputNames())
	}
	batch := -1
	var sums []float64
	for i := range inputs {
		in := &inputs[i]
		idx := sig.inputIndex(in.Name)
		if idx < 0 {
			return nil, fmt.Errorf("unexpected inference input '%s', allowed inputs are: %s", in.Name, sig.inputNames())
		}
		spec := &sig.Inputs[idx]
		if want := v2Datatypes[spec.DType]; in.Datatype != want {
			return nil, fmt.Errorf("input '%s': datatype %s, the model wants %s", in.Name, in.Datatype, want)
		}
		if spec.Shape != nil {
			ok := len(in.Shape) == len(spec.Shape)
			for j := 0; ok && j < len(spec.Shape); j++ {
				ok = spec.Shape[j] < 0 || spec.Shape[j] == in.Shape[j]
			}
			if !ok {
				return nil, fmt.Errorf("input '%s': shape %s does not match the model's %s", in.Name, payloads.ShapeString(in.Shape), payloads.ShapeString(spec.Shape))
			}
		}
		values := v2FloatValues(in)
		n := 1
		if len(in.Shape) > 0 {
			n = int(in.Shape[0])
		}
		if batch >= 0 && n != batch {
			return nil, fmt.Errorf("inputs disagree on the batch size: %d and %d", batch, n)
		}
		if batch < 0 {
			if err := checkBatch(int64(n), requestBytes); err != nil {
				return nil, err
			}
			batch, sums = n, make([]float64, n)
		}
		if n > 0 {
			per := len(values) / n
			for j, x := range values {
				if per > 0 {
					sums[j/per] += x
				}
			}
		}
	}
	return sums, nil
}

// v2FloatValues is an input's elements as numbers: booleans as 0 and 1,
// BYTES elements as their lengths.
func v2FloatValues(in *payloads.V2Input) []float64 {
	switch {
	case in.Floats != nil:
		return in.Floats
	case in.Ints != nil:
		out := make([]float64, len(in.Ints))
		for i, v := range in.Ints {
			out[i] = float64(v)
		}
		return out
	case in.Uints != nil:
		out := make([]float64, len(in.Uints))
		for i, v := range in.Uints {
			out[i] = float64(v)
		}
		return out
	case in.Bools != nil:
		out := make([]float64, len(in.Bools))
		for i, v := range in.Bools {
			if v {
				out[i] = 1
			}
		}
		return out
	}
	out := make([]float64, len(in.Bytes))
	for i, v := range in.Bytes {
		out[i] = float64(len(v))
	}
	return out
}
