package sim

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// predictionService is the simulator's tensorflow.serving.PredictionService.
type predictionService struct {
	tfproto.UnimplementedPredictionServiceServer
	s *Server
}

func (s *Server) signatureDef() *tfproto.SignatureDef {
	conv := func(specs []TensorSpec) map[string]*tfproto.TensorInfo {
		m := make(map[string]*tfproto.TensorInfo, len(specs))
		for _, sp := range specs {
			info := &tfproto.TensorInfo{
				Encoding: &tfproto.TensorInfo_Name{Name: sp.Name + ":0"},
				Dtype:    tfproto.DataType(tfproto.DataType_value[sp.DType]),
			}
			if sp.Shape == nil {
				info.TensorShape = &tfproto.TensorShapeProto{UnknownRank: true}
			} else {
				info.TensorShape = &tfproto.TensorShapeProto{}
				for _, d := range sp.Shape {
					info.TensorShape.Dim = append(info.TensorShape.Dim, &tfproto.TensorShapeProto_Dim{Size: d})
				}
			}
			m[sp.Name] = info
		}
		return m
	}
	sig := &s.cfg.Signature
	return &tfproto.SignatureDef{Inputs: conv(sig.Inputs), Outputs: conv(sig.Outputs), MethodName: "tensorflow/serving/predict"}
}

// resolve checks a ModelSpec the way TF Serving does and returns the
// version it names.
func (s *Server) resolve(spec *tfproto.ModelSpec) (int64, error) {
	if spec.GetName() != s.cfg.Model {
		return 0, status.Errorf(codes.NotFound, "Servable not found for request: Latest(%s)", spec.GetName())
	}
	switch v := spec.GetVersionChoice().(type) {
	case *tfproto.ModelSpec_Version:
		if v.Version.GetValue() != s.cfg.Version {
			return 0, status.Errorf(codes.NotFound, "Servable not found for request: Specific(%s, %d)", spec.GetName(), v.Version.GetValue())
		}
	case *tfproto.ModelSpec_VersionLabel:
		version, ok := s.cfg.Labels[v.VersionLabel]
		if !ok {
			return 0, status.Errorf(codes.NotFound, "Unrecognized servable version label: %s", v.VersionLabel)
		}
		return version, nil
	}
	return s.cfg.Version, nil
}

func (p *predictionService) GetModelMetadata(_ context.Context, req *tfproto.GetModelMetadataRequest) (*tfproto.GetModelMetadataResponse, error) {
	version, err := p.s.resolve(req.GetModelSpec())
	if err != nil {
		return nil, err
	}
	if f := req.GetMetadataField(); len(f) != 1 || f[0] != "signature_def" {
		return nil, status.Errorf(codes.InvalidArgument, "Metadata field %v is not supported", f)
	}
	sigs := &tfproto.SignatureDefMap{SignatureDef: map[string]*tfproto.SignatureDef{p.s.cfg.Signature.Name: p.s.signatureDef()}}
	packed, err := anypb.New(sigs)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	spec := &tfproto.ModelSpec{Name: p.s.cfg.Model}
	spec.VersionChoice = &tfproto.ModelSpec_Version{Version: wrapperspb.Int64(version)}
	return &tfproto.GetModelMetadataResponse{ModelSpec: spec, Metadata: map[string]*anypb.Any{"signature_def": packed}}, nil
}

func (p *predictionService) Predict(ctx context.Context, req *tfproto.PredictRequest) (*tfproto.PredictResponse, error) {
	p.s.networkDelay()
	start := time.Now()
	resp, err := p.predict(ctx, req)
	p.s.metrics.request(req.GetModelSpec().GetName(), "Predict", "GRPC", status.Code(err), time.Since(start))
	return resp, err
}

func (p *predictionService) predict(ctx context.Context, req *tfproto.PredictRequest) (*tfproto.PredictResponse, error) {
	arrived := time.Now()
	s := p.s
	s.noteArrival(arrived)
	if want := s.cfg.Authorization; want != "" {
		md, _ := metadata.FromIncomingContext(ctx)
		if got := md.Get("authorization"); len(got) != 1 || got[0] != want {
			return nil, status.Error(codes.Unauthenticated, "missing or wrong authorization metadata")
		}
	}
	version, err := s.resolve(req.GetModelSpec())
	if err != nil {
		return nil, err
	}
	sig := &s.cfg.Signature
	if name := req.GetModelSpec().GetSignatureName(); name != "" && name != sig.Name {
		return nil, status.Errorf(codes.FailedPrecondition, "Serving signature key %q not found.", name)
	}
	if len(req.GetInputs()) != len(sig.Inputs) {
		return nil, status.Errorf(codes.InvalidArgument, "input size does not match signature: %d!=%d len({%s}) != len({%s})",
			len(req.GetInputs()), len(sig.Inputs), strings.Join(sortedKeys(req.GetInputs()), ","), sig.inputNames())
	}
	batch := -1
	var sums []float64
	for i := range sig.Inputs {
		spec := &sig.Inputs[i]
		tp, ok := req.GetInputs()[spec.Name]
		if !ok {
			return nil, status.Errorf(codes.InvalidArgument, "input tensor alias not found in signature: %s. Inputs expected to be in the set {%s}.", strings.Join(sortedKeys(req.GetInputs()), ","), sig.inputNames())
		}
		values, shape, err := checkTensorProto(spec, tp)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		n := 1
		if len(shape) > 0 {
			n = int(shape[0])
		}
		if batch >= 0 && n != batch {
			return nil, status.Errorf(codes.InvalidArgument, "inputs disagree on the batch size: %d and %d", batch, n)
		}
		if batch < 0 {
			if err := checkBatch(int64(n), proto.Size(req)); err != nil {
				return nil, status.Error(codes.InvalidArgument, err.Error())
			}
			batch, sums = n, make([]float64, n)
		}
		if n > 0 {
			per := len(values) / n
			for j, v := range values {
				if per > 0 {
					sums[j/per] += v
				}
			}
		}
	}
	if err := s.wait(ctx, arrived); err != nil {
		return nil, err
	}
	s.predicts.Add(1)
	if l := &s.cfg.Latency; l.ErrorRate > 0 && rand.Float64() < l.ErrorRate {
		return nil, status.Error(grpcCodeForHTTP(l.ErrorStatus), "simulated failure")
	}
	out := &tfproto.TensorProto{Dtype: tfproto.DataType_DT_FLOAT, TensorShape: &tfproto.TensorShapeProto{Dim: []*tfproto.TensorShapeProto_Dim{{Size: int64(len(sums))}}}}
	for _, v := range sums {
		out.FloatVal = append(out.FloatVal, float32(v))
	}
	outName := "y"
	if len(sig.Outputs) > 0 {
		outName = sig.Outputs[0].Name
	}
	spec := &tfproto.ModelSpec{Name: s.cfg.Model, SignatureName: sig.Name, VersionChoice: &tfproto.ModelSpec_Version{Version: wrapperspb.Int64(version)}}
	return &tfproto.PredictResponse{ModelSpec: spec, Outputs: map[string]*tfproto.TensorProto{outName: out}}, nil
}

// wait holds a call for its simulated service time, or until the client
// gives up.
func (s *Server) wait(ctx context.Context, arrived time.Time) error {
	d, profiled := s.serveTime(arrived)
	switch err := s.hold(ctx, d-time.Since(arrived)); err {
	case nil:
		s.served(arrived, profiled)
		return nil
	case errClosing:
		return status.Error(codes.Unavailable, errClosing.Error())
	default:
		return status.FromContextError(err).Err()
	}
}

// restCode is the status TF Serving's REST server counts a call under.
func restCode(httpStatus int) codes.Code {
	switch {
	case httpStatus == 200:
		return codes.OK
	case httpStatus == 401:
		return codes.Unauthenticated
	}
	return grpcCodeForHTTP(httpStatus)
}

func grpcCodeForHTTP(httpStatus int) codes.Code {
	switch httpStatus {
	case 400:
		return codes.InvalidArgument
	case 404:
		return codes.NotFound
	case 429:
		return codes.ResourceExhausted
	case 501:
		return codes.Unimplemented
	case 503:
		return codes.Unavailable
	case 504:
		return codes.DeadlineExceeded
	}
	return codes.Internal
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var dtypeNames = map[string]string{
	"DT_FLOAT": "float", "DT_DOUBLE": "double", "DT_INT32": "int32", "DT_UINT8": "uint8", "DT_INT16": "int16",
	"DT_INT8": "int8", "DT_STRING": "string", "DT_INT64": "int64", "DT_BOOL": "bool", "DT_UINT32": "uint32",
	"DT_UINT64": "uint64", "DT_HALF": "half", "DT_BFLOAT16": "bfloat16", "DT_UINT16": "uint16",
}

func shortDtype(d string) string {
	if n, ok := dtypeNames[d]; ok {
		return n
	}
	return strings.ToLower(strings.TrimPrefix(d, "DT_"))
}

// checkTensorProto validates tp against spec as a TensorFlow session would
// and returns its values as float64 (string lengths for strings) and its
// shape.
func checkTensorProto(spec *TensorSpec, tp *tfproto.TensorProto) ([]float64, []int64, error) {
	got := tp.GetDtype().String()
	if got != spec.DType {
		//lint:ignore ST1005 TF Serving's own words, which clients may match
		return nil, nil, fmt.Errorf("Expects arg[0] (%s) to be %s but %s is provided", spec.Name, shortDtype(spec.DType), shortDtype(got))
	}
	var shape []int64
	count := int64(1)
	for _, d := range tp.GetTensorShape().GetDim() {
		if d.GetSize() < 0 {
			return nil, nil, fmt.Errorf("input %s: negative dimension %d", spec.Name, d.GetSize())
		}
		shape = append(shape, d.GetSize())
		count *= d.GetSize()
	}
	if spec.Shape != nil {
		if len(shape) != len(spec.Shape) {
			return nil, nil, fmt.Errorf("input %s: expected rank %d (shape %v), got shape %v", spec.Name, len(spec.Shape), spec.Shape, shape)
		}
		for i, d := range spec.Shape {
			if d >= 0 && shape[i] != d {
				return nil, nil, fmt.Errorf("input %s: dimension %d is %d, the signature wants %d (shape %v)", spec.Name, i, shape[i], d, spec.Shape)
			}
		}
	}
	values, err := tensorValues(tp)
	if err != nil {
		return nil, nil, fmt.Errorf("input %s: %v", spec.Name, err)
	}
	if int64(len(values)) != count {
		return nil, nil, fmt.Errorf("input %s: shape %v needs %d values, the tensor has %d", spec.Name, shape, count, len(values))
	}
	return values, shape, nil
}

// tensorValues decodes a tensor's values from its typed field or from
// tensor_content.
func tensorValues(tp *tfproto.TensorProto) ([]float64, error) {
	content := tp.GetTensorContent()
	le := binary.LittleEndian
	fromContent := func(size int, conv func([]byte) float64) ([]float64, error) {
		if len(content)%size != 0 {
			return nil, fmt.Errorf("tensor_content of %d bytes is not a whole number of %d-byte values", len(content), size)
		}
		out := make([]float64, 0, len(content)/size)
		for i := 0; i < len(content); i += size {
			out = append(out, conv(content[i:i+size]))
		}
		return out, nil
	}
	var out []float64
	switch tp.GetDtype() {
	case tfproto.DataType_DT_FLOAT:
		if len(content) > 0 {
			return fromContent(4, func(b []byte) float64 { return float64(math.Float32frombits(le.Uint32(b))) })
		}
		for _, v := range tp.GetFloatVal() {
			out = append(out, float64(v))
		}
	case tfproto.DataType_DT_DOUBLE:
		if len(content) > 0 {
			return fromContent(8, func(b []byte) float64 { return math.Float64frombits(le.Uint64(b)) })
		}
		out = append(out, tp.GetDoubleVal()...)
	case tfproto.DataType_DT_INT32, tfproto.DataType_DT_INT16, tfproto.DataType_DT_INT8, tfproto.DataType_DT_UINT8, tfproto.DataType_DT_UINT16:
		if len(content) > 0 {
			switch tp.GetDtype() {
			case tfproto.DataType_DT_INT32:
				return fromContent(4, func(b []byte) float64 { return float64(int32(le.Uint32(b))) })
			case tfproto.DataType_DT_INT16:
				return fromContent(2, func(b []byte) float64 { return float64(int16(le.Uint16(b))) })
			case tfproto.DataType_DT_UINT16:
				return fromContent(2, func(b []byte) float64 { return float64(le.Uint16(b)) })
			case tfproto.DataType_DT_INT8:
				return fromContent(1, func(b []byte) float64 { return float64(int8(b[0])) })
			}
			return fromContent(1, func(b []byte) float64 { return float64(b[0]) })
		}
		for _, v := range tp.GetIntVal() {
			out = append(out, float64(v))
		}
	case tfproto.DataType_DT_INT64:
		if len(content) > 0 {
			return fromContent(8, func(b []byte) float64 { return float64(int64(le.Uint64(b))) })
		}
		for _, v := range tp.GetInt64Val() {
			out = append(out, float64(v))
		}
	case tfproto.DataType_DT_UINT32:
		if len(content) > 0 {
			return fromContent(4, func(b []byte) float64 { return float64(le.Uint32(b)) })
		}
		for _, v := range tp.GetUint32Val() {
			out = append(out, float64(v))
		}
	case tfproto.DataType_DT_UINT64:
		if len(content) > 0 {
			return fromContent(8, func(b []byte) float64 { return float64(le.Uint64(b)) })
		}
		for _, v := range tp.GetUint64Val() {
			out = append(out, float64(v))
		}
	case tfproto.DataType_DT_BOOL:
		if len(content) > 0 {
			return fromContent(1, func(b []byte) float64 { return float64(b[0] & 1) })
		}
		for _, v := range tp.GetBoolVal() {
			if v {
				out = append(out, 1)
			} else {
				out = append(out, 0)
			}
		}
	case tfproto.DataType_DT_STRING:
		for _, v := range tp.GetStringVal() {
			out = append(out, float64(len(v)))
		}
	default:
		return nil, fmt.Errorf("the simulator does not take %s", tp.GetDtype())
	}
	return out, nil
}
