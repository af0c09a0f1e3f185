package payloads

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// v2Element is what loadprof knows of a V2 datatype: the size in bytes of
// one element in the raw layout (the binary tensor extension's and gRPC's
// raw_input_contents; 0 for BYTES, whose elements carry their own length),
// and which V2Input slice carries its values.
type v2Element struct {
	size  int
	slice string // "Bools", "Ints", "Uints", "Floats" or "Bytes"
}

// v2Datatypes are the tensor datatypes of the Open Inference Protocol.
var v2Datatypes = map[string]v2Element{
	"BOOL": {1, "Bools"},
	"INT8": {1, "Ints"}, "INT16": {2, "Ints"}, "INT32": {4, "Ints"}, "INT64": {8, "Ints"},
	"UINT8": {1, "Uints"}, "UINT16": {2, "Uints"}, "UINT32": {4, "Uints"}, "UINT64": {8, "Uints"},
	"FP16": {2, "Floats"}, "BF16": {2, "Floats"}, "FP32": {4, "Floats"}, "FP64": {8, "Floats"},
	"BYTES": {0, "Bytes"},
}

// IsV2Datatype reports whether name is a V2 tensor datatype.
func IsV2Datatype(name string) bool {
	_, ok := v2Datatypes[name]
	return ok
}

// isV2Body tells a native V2 body from a TF Serving one: V2 "inputs" is a
// list of tensor objects, which TF Serving's columnar form never is (an
// object inside a TF tensor must be {"b64": ...}).
func isV2Body(root *Value) bool {
	if root.Kind != Object || root.Get("instances") != nil {
		return false
	}
	inputs := root.Get("inputs")
	return inputs != nil && inputs.Kind == Array && len(inputs.Items) > 0 &&
		inputs.Items[0].Kind == Object && !isB64(&inputs.Items[0])
}

// ParseV2Body validates a native V2 infer request body
// ({"id"?, "parameters"?, "inputs": [...], "outputs"?}) and returns it.
// Each input's data may be flat or nested as its shape; its values must
// fit its datatype and their count the shape. Errors carry the line of the
// offending value.
func ParseV2Body(data []byte) (*V2Request, error) {
	root, err := ParseJSON(data)
	if err != nil {
		return nil, err
	}
	return parseV2Root(&root, nil)
}

// ParseV2Binary validates a V2 infer body in the binary tensor extension:
// a JSON header of headerLen bytes (the Inference-Header-Content-Length
// header), then the raw tensors of the inputs whose "binary_data_size"
// parameter gives their size, in input order. The binary_data_size
// parameters are not kept in the inputs' Parameters.
func ParseV2Binary(body []byte, headerLen int) (*V2Request, error) {
	if headerLen < 0 || headerLen > len(body) {
		return nil, fmt.Errorf("Inference-Header-Content-Length %d is outside the %d-byte body", headerLen, len(body))
	}
	root, err := ParseJSON(body[:headerLen])
	if err != nil {
		return nil, err
	}
	raw := &v2Raw{rest: body[headerLen:]}
	req, err := parseV2Root(&root, raw)
	if err != nil {
		return nil, err
	}
	if len(raw.rest) > 0 {
		return nil, fmt.Errorf("%d bytes after the last binary tensor", len(raw.rest))
	}
	return req, nil
}

// v2Raw is what is left of a binary body's tensors.
type v2Raw struct{ rest []byte }

func parseV2Root(root *Value, raw *v2Raw) (*V2Request, error) {
	if root.Kind != Object {
		return nil, &SyntaxError{Line: root.Line, Msg: fmt.Sprintf("a V2 infer body must be a JSON object with \"inputs\", got %s", root.Kind)}
	}
	req := &V2Request{}
	for i := range root.Members {
		m := &root.Members[i]
		var err error
		switch m.Key {
		case "id":
			if m.Value.Kind != String {
				return nil, &SyntaxError{Line: m.Value.Line, Msg: fmt.Sprintf("\"id\" must be a string, got %s", m.Value.Kind)}
			}
			req.ID = m.Value.Str
		case "parameters":
			req.Parameters, err = parseV2Parameters(&m.Value, "the request's \"parameters\"")
		case "inputs":
			req.Inputs, err = parseV2Inputs(&m.Value, raw)
		case "outputs":
			req.Outputs, err = parseV2Outputs(&m.Value)
		default:
			return nil, &SyntaxError{Line: m.Value.Line, Msg: fmt.Sprintf("unknown key %q in a V2 infer body (want id, parameters, inputs, outputs)", m.Key)}
		}
		if err != nil {
			return nil, err
		}
	}
	if req.Inputs == nil {
		return nil, &SyntaxError{Line: root.Line, Msg: "the V2 body has no \"inputs\""}
	}
	return req, nil
}

func parseV2Parameters(v *Value, what string) (map[string]any, error) {
	if v.Kind != Object {
		return nil, &SyntaxError{Line: v.Line, Msg: fmt.Sprintf("%s must be an object, got %s", what, v.Kind)}
	}
	params := make(map[string]any, len(v.Members))
	for _, m := range v.Members {
		switch m.Value.Kind {
		case Bool:
			params[m.Key] = m.Value.Bool
		case String:
			params[m.Key] = m.Value.Str
		case Number:
			if n, err := strconv.ParseInt(m.Value.NumText, 10, 64); err == nil {
				params[m.Key] = n
			} else if math.IsNaN(m.Value.Num) || math.IsInf(m.Value.Num, 0) {
				return nil, &SyntaxError{Line: m.Value.Line, Msg: fmt.Sprintf("%s: %q is %s, which JSON cannot carry", what, m.Key, m.Value.NumText)}
			} else {
				params[m.Key] = m.Value.Num
			}
		default:
			return nil, &SyntaxError{Line: m.Value.Line, Msg: fmt.Sprintf("%s: %q must be a bool, number or string, got %s", what, m.Key, m.Value.Kind)}
		}
	}
	return params, nil
}

func parseV2Inputs(v *Value, raw *v2Raw) ([]V2Input, error) {
	if v.Kind != Array {
		return nil, &SyntaxError{Line: v.Line, Msg: fmt.Sprintf("\"inputs\" must be a list of tensors, got %s", v.Kind)}
	}
	if len(v.Items) == 0 {
		return nil, &SyntaxError{Line: v.Line, Msg: "\"inputs\" is an empty list"}
	}
	inputs := make([]V2Input, len(v.Items))
	seen := map[string]bool{}
	for i := range v.Items {
		if err := parseV2Input(&v.Items[i], i, &inputs[i], raw); err != nil {
			return nil, err
		}
		if seen[inputs[i].Name] {
			return nil, &SyntaxError{Line: v.Items[i].Line, Msg: fmt.Sprintf("input %q is given twice", inputs[i].Name)}
		}
		seen[inputs[i].Name] = true
	}
	return inputs, nil
}

func parseV2Input(v *Value, index int, in *V2Input, raw *v2Raw) error {
	if v.Kind != Object {
		return &SyntaxError{Line: v.Line, Msg: fmt.Sprintf("input %d must be an object with name, shape, datatype and data, got %s", index, v.Kind)}
	}
	name := v.Get("name")
	if name == nil || name.Kind != String || name.Str == "" {
		return &SyntaxError{Line: v.Line, Msg: fmt.Sprintf("input %d has no \"name\" string", index)}
	}
	in.Name = name.Str
	what := fmt.Sprintf("input %q", in.Name)
	var data *Value
	for i := range v.Members {
		m := &v.Members[i]
		switch m.Key {
		case "name":
		case "datatype":
			if m.Value.Kind != String || !IsV2Datatype(m.Value.Str) {
				return &SyntaxError{Line: m.Value.Line, Msg: fmt.Sprintf("%s: \"datatype\" must be one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, BF16, FP32, FP64, BYTES; got %s", what, describeValue(&m.Value))}
			}
			in.Datatype = m.Value.Str
		case "shape":
			if m.Value.Kind != Array {
				return &SyntaxError{Line: m.Value.Line, Msg: fmt.Sprintf("%s: \"shape\" must be a list of sizes, got %s", what, m.Value.Kind)}
			}
			in.Shape = make([]int64, len(m.Value.Items))
			for d := range m.Value.Items {
				dim := &m.Value.Items[d]
				n, err := strconv.ParseInt(dim.NumText, 10, 64)
				if dim.Kind != Number || err != nil || n < 0 {
					return &SyntaxError{Line: dim.Line, Msg: fmt.Sprintf("%s: dimension %d of \"shape\" is %s, not a size", what, d, describeValue(dim))}
				}
				in.Shape[d] = n
			}
		case "data":
			data = &m.Value
		case "parameters":
			params, err := parseV2Parameters(&m.Value, what+"'s \"parameters\"")
			if err != nil {
				return err
			}
			in.Parameters = params
		default:
			return &SyntaxError{Line: m.Value.Line, Msg: fmt.Sprintf("%s: unknown key %q (want name, shape, datatype, data, parameters)", what, m.Key)}
		}
	}
	switch {
	case in.Datatype == "":
		return &SyntaxError{Line: v.Line, Msg: what + " has no \"datatype\""}
	case in.Shape == nil:
		return &SyntaxError{Line: v.Line, Msg: what + " has no \"shape\""}
	}
	if _, ok := in.Parameters["binary_data_size"]; ok && raw == nil {
		return &SyntaxError{Line: v.Line, Msg: fmt.Sprintf("%s: a binary_data_size parameter claims a binary tensor after the JSON, which a JSON body does not have: give the input's \"data\" (--v2-binary sends the tensors in the binary extension)", what)}
	}
	if size, ok := in.Parameters["binary_data_size"]; ok && raw != nil {
		delete(in.Parameters, "binary_data_size")
		if len(in.Parameters) == 0 {
			in.Parameters = nil
		}
		n, isInt := size.(int64)
		if !isInt || n < 0 || n > int64(len(raw.rest)) {
			return &SyntaxError{Line: v.Line, Msg: fmt.Sprintf("%s: binary_data_size %v does not fit the %d bytes left in the body", what, size, len(raw.rest))}
		}
		if data != nil {
			return &SyntaxError{Line: data.Line, Msg: what + " has both \"data\" and binary_data_size"}
		}
		tensor := raw.rest[:n]
		raw.rest = raw.rest[n:]
		if err := decodeV2Raw(in, tensor); err != nil {
			return &SyntaxError{Line: v.Line, Msg: what + ": " + err.Error()}
		}
		return nil
	}
	if data == nil {
		return &SyntaxError{Line: v.Line, Msg: what + " has no \"data\""}
	}
	var t Tensor
	if err := flatten(&t, data, what); err != nil {
		return err
	}
	want, ok := V2ElementCount(in.Shape)
	if !ok {
		return &SyntaxError{Line: v.Line, Msg: fmt.Sprintf("%s: shape %s holds more elements than an int64 counts", what, shape64String(in.Shape))}
	}
	// Data is flat, or nested exactly as the shape says.
	if len(t.Shape) > 1 && !sameShape(t.Shape, in.Shape) {
		return &SyntaxError{Line: data.Line, Msg: fmt.Sprintf("%s: \"data\" is nested as %s, \"shape\" says %s (give it flat or nested as the shape)", what, shapeString(t.Shape), shape64String(in.Shape))}
	}
	if int64(len(t.Leaves)) != want {
		return &SyntaxError{Line: data.Line, Msg: fmt.Sprintf("%s: \"data\" has %d elements, shape %s has %d", what, len(t.Leaves), shape64String(in.Shape), want)}
	}
	if err := fillV2(in, &t); err != nil {
		var se *SyntaxError
		if asSyntax(err, &se) {
			se.Msg = what + ": " + se.Msg
			return se
		}
		return &SyntaxError{Line: data.Line, Msg: what + ": " + err.Error()}
	}
	return nil
}

func asSyntax(err error, se **SyntaxError) bool {
	s, ok := err.(*SyntaxError)
	if ok {
		*se = s
	}
	return ok
}

func describeValue(v *Value) string {
	switch v.Kind {
	case String:
		return strconv.Quote(v.Str)
	case Number:
		return v.NumText
	}
	return v.Kind.String()
}

func parseV2Outputs(v *Value) ([]V2Output, error) {
	if v.Kind != Array {
		return nil, &SyntaxError{Line: v.Line, Msg: fmt.Sprintf("\"outputs\" must be a list of {\"name\": ...}, got %s", v.Kind)}
	}
	outs := make([]V2Output, len(v.Items))
	for i := range v.Items {
		o := &v.Items[i]
		name := o.Get("name")
		if o.Kind != Object || name == nil || name.Kind != String || name.Str == "" {
			return nil, &SyntaxError{Line: o.Line, Msg: fmt.Sprintf("output %d must be an object with a \"name\" string", i)}
		}
		outs[i].Name = name.Str
		for _, m := range o.Members {
			switch m.Key {
			case "name":
			case "parameters":
				params, err := parseV2Parameters(&m.Value, fmt.Sprintf("output %q's \"parameters\"", name.Str))
				if err != nil {
					return nil, err
				}
				if p, ok := params["binary_data"]; ok {
					b, isBool := p.(bool)
					if !isBool {
						return nil, &SyntaxError{Line: m.Value.Line, Msg: fmt.Sprintf("output %q: \"binary_data\" must be true or false, got %v", name.Str, p)}
					}
					outs[i].Binary = b
					delete(params, "binary_data")
				}
				if len(params) > 0 {
					outs[i].Parameters = params
				}
			default:
				return nil, &SyntaxError{Line: m.Value.Line, Msg: fmt.Sprintf("output %q: unknown key %q (want name, parameters)", name.Str, m.Key)}
			}
		}
	}
	return outs, nil
}

// V2ElementCount is the number of elements a shape of non-negative
// dimensions holds, and false when that number does not fit in an int64.
// A zero dimension makes the count 0 whatever the others are.
func V2ElementCount(shape []int64) (int64, bool) {
	for _, d := range shape {
		if d == 0 {
			return 0, true
		}
	}
	n := int64(1)
	for _, d := range shape {
		if d < 0 || n > math.MaxInt64/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// ShapeString prints a V2 shape the way every loadprof message does:
// [2, 3].
func ShapeString(shape []int64) string { return shape64String(shape) }

func sameShape(a []int, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if int64(a[i]) != b[i] {
			return false
		}
	}
	return true
}

func shape64String(shape []int64) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// fillV2 sets in's values from the leaves of t by in.Datatype, checking
// that each fits. Errors are *SyntaxError with the value's line.
func fillV2(in *V2Input, t *Tensor) error {
	want := NumberLeaves
	switch in.Datatype {
	case "BYTES":
		want = StringLeaves
	case "BOOL":
		want = BoolLeaves
	}
	if t.Kind != 0 && t.Kind != want {
		line := 0
		if len(t.Leaves) > 0 {
			line = t.Leaves[0].Line
		}
		return &SyntaxError{Line: line, Msg: fmt.Sprintf("datatype %s wants %s, the data has %s", in.Datatype, want, t.Kind)}
	}
	n := len(t.Leaves)
	switch in.Datatype {
	case "BYTES":
		in.Bytes = make([][]byte, n)
		for i, l := range t.Leaves {
			in.Bytes[i] = l.Bytes
		}
	case "BOOL":
		in.Bools = make([]bool, n)
		for i, l := range t.Leaves {
			in.Bools[i] = l.Bool
		}
	case "INT8", "INT16", "INT32", "INT64":
		in.Ints = make([]int64, n)
		bits := 8 * v2Datatypes[in.Datatype].size
		for i, l := range t.Leaves {
			v, err := strconv.ParseInt(l.NumText, 10, bits)
			if err != nil {
				return &SyntaxError{Line: l.Line, Msg: fmt.Sprintf("%s is not an integer that fits in %s", l.NumText, in.Datatype)}
			}
			in.Ints[i] = v
		}
	case "UINT8", "UINT16", "UINT32", "UINT64":
		in.Uints = make([]uint64, n)
		bits := 8 * v2Datatypes[in.Datatype].size
		for i, l := range t.Leaves {
			v, err := strconv.ParseUint(l.NumText, 10, bits)
			if err != nil {
				return &SyntaxError{Line: l.Line, Msg: fmt.Sprintf("%s is not an integer that fits in %s", l.NumText, in.Datatype)}
			}
			in.Uints[i] = v
		}
	default: // FP16, BF16, FP32, FP64
		format := v2FloatFormat(in.Datatype)
		in.Floats = make([]float64, n)
		for i, l := range t.Leaves {
			if leafOverflows(l.Num, l.NumText, format) {
				return &SyntaxError{Line: l.Line, Msg: fmt.Sprintf("%s does not fit in %s", l.NumText, in.Datatype)}
			}
			in.Floats[i] = l.Num
		}
	}
	return nil
}

// decodeV2Raw sets in's values from its tensor in the raw layout, which
// the binary tensor extension and gRPC's raw_input_contents share:
// little-endian, row-major, each BYTES element behind its 4-byte length.
// The elements must fill in's shape.
func decodeV2Raw(in *V2Input, tensor []byte) error {
	el, ok := v2Datatypes[in.Datatype]
	if !ok {
		return fmt.Errorf("unknown datatype %q", in.Datatype)
	}
	for _, d := range in.Shape {
		if d < 0 {
			return fmt.Errorf("shape %s has a negative dimension", shape64String(in.Shape))
		}
	}
	n, ok := V2ElementCount(in.Shape)
	if !ok {
		return fmt.Errorf("shape %s holds more elements than an int64 counts", shape64String(in.Shape))
	}
	le := binary.LittleEndian
	if in.Datatype == "BYTES" {
		// Each element takes at least its 4-byte length: a shape larger
		// than the tensor allocates nothing for it.
		in.Bytes = make([][]byte, 0, min(n, int64(len(tensor)/4)))
		for len(tensor) > 0 {
			if len(tensor) < 4 || uint64(le.Uint32(tensor)) > uint64(len(tensor)-4) {
				return fmt.Errorf("BYTES element %d runs past the end of the tensor", len(in.Bytes))
			}
			size := le.Uint32(tensor)
			in.Bytes = append(in.Bytes, tensor[4:4+size:4+size])
			tensor = tensor[4+size:]
		}
		if int64(len(in.Bytes)) != n {
			return fmt.Errorf("shape %s holds %d elements, the tensor has %d", shape64String(in.Shape), n, len(in.Bytes))
		}
		return nil
	}
	size := int64(el.size)
	if n > int64(len(tensor))/size || int64(len(tensor)) != n*size {
		return fmt.Errorf("shape %s holds %d elements of %s (%d bytes each), the tensor has %d bytes", shape64String(in.Shape), n, in.Datatype, size, len(tensor))
	}
	for i := int64(0); i < n; i++ {
		e := tensor[i*size : (i+1)*size]
		switch in.Datatype {
		case "BOOL":
			in.Bools = append(in.Bools, e[0] != 0)
		case "INT8":
			in.Ints = append(in.Ints, int64(int8(e[0])))
		case "INT16":
			in.Ints = append(in.Ints, int64(int16(le.Uint16(e))))
		case "INT32":
			in.Ints = append(in.Ints, int64(int32(le.Uint32(e))))
		case "INT64":
			in.Ints = append(in.Ints, int64(le.Uint64(e)))
		case "UINT8":
			in.Uints = append(in.Uints, uint64(e[0]))
		case "UINT16":
			in.Uints = append(in.Uints, uint64(le.Uint16(e)))
		case "UINT32":
			in.Uints = append(in.Uints, uint64(le.Uint32(e)))
		case "UINT64":
			in.Uints = append(in.Uints, le.Uint64(e))
		case "FP16":
			in.Floats = append(in.Floats, halfValue(le.Uint16(e)))
		case "BF16":
			in.Floats = append(in.Floats, float64(math.Float32frombits(uint32(le.Uint16(e))<<16)))
		case "FP32":
			in.Floats = append(in.Floats, float64(math.Float32frombits(le.Uint32(e))))
		case "FP64":
			in.Floats = append(in.Floats, math.Float64frombits(le.Uint64(e)))
		}
	}
	return nil
}

// halfValue is the value of an IEEE 754 binary16 bit pattern.
func halfValue(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(mant, -24)
	case 0x1f:
		if mant != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	}
	return sign * math.Ldexp(1+mant/1024, exp-15)
}

// v2FloatFormat is the format of a V2 float datatype narrower than float64
// (nil for FP64).
func v2FloatFormat(datatype string) *floatFormat {
	switch datatype {
	case "FP16":
		return &fp16Format
	case "BF16":
		return &bf16Format
	case "FP32":
		return &fp32Format
	}
	return nil
}
