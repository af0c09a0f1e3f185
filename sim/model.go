// Package sim is an embedded simulator of a TensorFlow Serving model server
// on loopback. It answers the REST predict, status and metadata routes the
// way TF Serving does, with a configurable latency distribution, error rate
// and periodic stalls, so that demos and tests run anywhere. The same REST
// port serves the Open Inference Protocol (v2.go) and an OpenAI-compatible
// language model that streams tokens as vLLM does (openai.go). It is never
// presented as the real thing.
package sim

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/loadprof/loadprof/payloads"

	"github.com/loadprof/loadprof/internal/setting"
)

// TensorSpec is one input or output of a signature. A dimension of -1 takes
// any size; a nil Shape takes any shape.
type TensorSpec struct {
	Name  string
	DType string // "DT_FLOAT", "DT_INT64", "DT_STRING", ...
	Shape []int64
}

// ParseTensorSpec reads NAME:TYPE[:DIMS] as given to `sim --input`, e.g.
// "x:float:-1,4" or "text:string:-1".
func ParseTensorSpec(s string) (TensorSpec, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
		return TensorSpec{}, setting.Invalid("sim.ParseTensorSpec", fmt.Sprintf("%q", s), "want NAME:TYPE[:DIMS], e.g. x:float:-1,4")
	}
	dtype := "DT_" + strings.ToUpper(parts[1])
	if _, ok := dtypeKinds[dtype]; !ok {
		return TensorSpec{}, setting.Invalid("sim.ParseTensorSpec", fmt.Sprintf("%q", s), fmt.Sprintf("unknown type %q", parts[1]))
	}
	spec := TensorSpec{Name: parts[0], DType: dtype}
	if len(parts) == 3 {
		spec.Shape = []int64{}
		for _, d := range strings.Split(parts[2], ",") {
			if d == "" {
				continue
			}
			n, err := strconv.ParseInt(d, 10, 64)
			if err != nil || n < -1 {
				return TensorSpec{}, setting.Invalid("sim.ParseTensorSpec", fmt.Sprintf("%q", s), fmt.Sprintf("dimension %q is not a size or -1", d))
			}
			spec.Shape = append(spec.Shape, n)
		}
	}
	return spec, nil
}

// dtypeKinds maps the dtypes the simulator accepts to the JSON scalars that
// carry them.
var dtypeKinds = map[string]payloads.LeafKind{
	"DT_FLOAT": payloads.NumberLeaves, "DT_DOUBLE": payloads.NumberLeaves,
	"DT_INT8": payloads.NumberLeaves, "DT_INT16": payloads.NumberLeaves, "DT_INT32": payloads.NumberLeaves,
	"DT_INT64": payloads.NumberLeaves, "DT_UINT8": payloads.NumberLeaves, "DT_UINT32": payloads.NumberLeaves,
	"DT_UINT64": payloads.NumberLeaves, "DT_STRING": payloads.StringLeaves, "DT_BOOL": payloads.BoolLeaves,
}

// Signature is the simulated model's one SignatureDef.
type Signature struct {
	Name    string
	Inputs  []TensorSpec
	Outputs []TensorSpec
}

// DefaultSignature is "serving_default" with one float input x of shape
// [-1, 4] and one float output y of shape [-1].
func DefaultSignature() Signature {
	return Signature{
		Name:    "serving_default",
		Inputs:  []TensorSpec{{Name: "x", DType: "DT_FLOAT", Shape: []int64{-1, 4}}},
		Outputs: []TensorSpec{{Name: "y", DType: "DT_FLOAT", Shape: []int64{-1}}},
	}
}

// bind matches the tensors of a request to the signature's inputs, checking
// names, dtypes and shapes as a TensorFlow session would.
func (sig *Signature) bind(req *payloads.Request) ([]*payloads.Tensor, error) {
	bound := make([]*payloads.Tensor, len(sig.Inputs))
	if len(req.Inputs) == 1 && req.Inputs[0].Name == "" {
		if len(sig.Inputs) != 1 {
			return nil, fmt.Errorf("the signature has %d inputs: each instance must be an object with keys %s", len(sig.Inputs), sig.inputNames())
		}
		bound[0] = &req.Inputs[0]
	} else {
		for i := range req.Inputs {
			in := &req.Inputs[i]
			idx := sig.inputIndex(in.Name)
			if idx < 0 {
				return nil, fmt.Errorf("input %q is not in the signature (inputs: %s)", in.Name, sig.inputNames())
			}
			bound[idx] = in
		}
		for i, b := range bound {
			if b == nil {
				return nil, fmt.Errorf("missing input %q", sig.Inputs[i].Name)
			}
		}
	}
	for i, t := range bound {
		spec := &sig.Inputs[i]
		if err := checkTensor(spec, t); err != nil {
			return nil, err
		}
	}
	return bound, nil
}

func checkTensor(spec *TensorSpec, t *payloads.Tensor) error {
	want := dtypeKinds[spec.DType]
	if t.Kind != 0 && t.Kind != want {
		return fmt.Errorf("input %q: expected %s for %s, got %s", spec.Name, want, spec.DType, t.Kind)
	}
	if strings.HasPrefix(spec.DType, "DT_INT") || strings.HasPrefix(spec.DType, "DT_UINT") {
		for _, l := range t.Leaves {
			if l.Num != math.Trunc(l.Num) || math.IsInf(l.Num, 0) || strings.ContainsAny(l.NumText, ".eE") {
				return fmt.Errorf("input %q: %s is not an integer for %s", spec.Name, l.NumText, spec.DType)
			}
			if strings.HasPrefix(spec.DType, "DT_UINT") && l.Num < 0 {
				return fmt.Errorf("input %q: %s is negative for %s", spec.Name, l.NumText, spec.DType)
			}
		}
	}
	if spec.Shape == nil {
		return nil
	}
	if len(t.Shape) != len(spec.Shape) {
		return fmt.Errorf("input %q: expected rank %d (shape %v), got shape %v", spec.Name, len(spec.Shape), spec.Shape, t.Shape)
	}
	for d, n := range spec.Shape {
		if n >= 0 && int64(t.Shape[d]) != n {
			return fmt.Errorf("input %q: dimension %d is %d, the signature wants %d (shape %v)", spec.Name, d, t.Shape[d], n, spec.Shape)
		}
	}
	return nil
}

func (sig *Signature) inputIndex(name string) int {
	for i, in := range sig.Inputs {
		if in.Name == name {
			return i
		}
	}
	return -1
}

func (sig *Signature) inputNames() string {
	names := make([]string, len(sig.Inputs))
	for i, in := range sig.Inputs {
		names[i] = in.Name
	}
	return strings.Join(names, ", ")
}

// predict computes the simulated model: for each example, the sum of its
// numbers, byte lengths of its strings and true booleans, over all inputs.
// The batch size is the first dimension of the inputs (1 for scalars).
func predict(inputs []*payloads.Tensor, requestBytes int) ([]float64, error) {
	batch := -1
	for _, t := range inputs {
		n := 1
		if len(t.Shape) > 0 {
			n = t.Shape[0]
		}
		if batch >= 0 && n != batch {
			return nil, fmt.Errorf("inputs disagree on the batch size: %d and %d", batch, n)
		}
		batch = n
	}
	if err := checkBatch(int64(batch), requestBytes); err != nil {
		return nil, err
	}
	out := make([]float64, batch)
	for _, t := range inputs {
		if batch == 0 {
			break
		}
		per := len(t.Leaves) / batch
		for i, l := range t.Leaves {
			var v float64
			switch t.Kind {
			case payloads.NumberLeaves:
				v = l.Num
			case payloads.StringLeaves:
				v = float64(len(l.Bytes))
			case payloads.BoolLeaves:
				if l.Bool {
					v = 1
				}
			}
			if per > 0 {
				out[i/per] += v
			}
		}
	}
	return out, nil
}

// checkBatch bounds the outputs the simulator allocates for one request by
// the request's size. A declared shape is not evidence of data: a
// zero-size tensor [2^40, 0] or a shape whose count overflows would
// otherwise make the simulator allocate by what the request claims.
func checkBatch(batch int64, requestBytes int) error {
	if batch > int64(requestBytes) {
		return fmt.Errorf("batch size %d is larger than the %d-byte request: the simulator answers at most one example per request byte", batch, requestBytes)
	}
	return nil
}
