package payloads

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"
)

// V2BinaryHeader is the HTTP header that gives the length of the JSON part
// of a body in the binary tensor extension.
const V2BinaryHeader = "Inference-Header-Content-Length"

// The JSON of a rendered request is compact with its keys in a fixed
// order (id, inputs, outputs, parameters; an input's name, shape,
// datatype, parameters, data), the order tritonclient writes them in, so
// that the same request renders to the same bytes.

// RenderJSON renders r as a V2 infer request body in JSON. Values JSON
// cannot carry (NaN, infinities, bytes that are not UTF-8) are an error
// naming the input: the binary extension carries them.
func (r *V2Request) RenderJSON() ([]byte, error) {
	return r.render(false)
}

// RenderBinary renders r in the binary tensor extension: a JSON header
// whose inputs have no "data" but a "binary_data_size" parameter, then
// every input's raw tensor in input order (little-endian, row-major; BOOL
// one byte; BYTES elements each after a 4-byte little-endian length; FP16
// and BF16 converted from the values). Every requested output is asked for
// as binary; with none named, the request asks for every output in binary
// ("binary_data_output": true). headerLen is the value of the Inference-Header-Content-Length
// header.
func (r *V2Request) RenderBinary() (body []byte, headerLen int, err error) {
	body, err = r.render(true)
	if err != nil {
		return nil, 0, err
	}
	headerLen = len(body)
	for i := range r.Inputs {
		body = appendV2Raw(body, &r.Inputs[i])
	}
	return body, headerLen, nil
}

func (r *V2Request) render(binary bool) ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, '{')
	if r.ID != "" {
		b = append(b, `"id":`...)
		b = appendJSONString(b, r.ID)
		b = append(b, ',')
	}
	b = append(b, `"inputs":[`...)
	for i := range r.Inputs {
		in := &r.Inputs[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendJSONString(b, in.Name)
		b = append(b, `,"shape":[`...)
		for d, n := range in.Shape {
			if d > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, n, 10)
		}
		b = append(b, `],"datatype":`...)
		b = appendJSONString(b, in.Datatype)
		params := in.Parameters
		if binary {
			params = make(map[string]any, len(in.Parameters)+1)
			for k, v := range in.Parameters {
				params[k] = v
			}
			delete(params, "binary_data_size")
		}
		if len(params) > 0 || binary {
			b = append(b, `,"parameters":`...)
			var err error
			if b, err = appendV2Params(b, params); err != nil {
				return nil, fmt.Errorf("input %q: %w", in.Name, err)
			}
			if binary {
				// binary_data_size goes last, after the input's own.
				b = b[:len(b)-1]
				if len(params) > 0 {
					b = append(b, ',')
				}
				b = append(b, `"binary_data_size":`...)
				b = strconv.AppendInt(b, int64(v2RawSize(in)), 10)
				b = append(b, '}')
			}
		}
		if !binary {
			b = append(b, `,"data":`...)
			var err error
			if b, err = appendV2Data(b, in); err != nil {
				return nil, fmt.Errorf("input %q: %w", in.Name, err)
			}
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	if len(r.Outputs) > 0 {
		b = append(b, `,"outputs":[`...)
		for i, o := range r.Outputs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendJSONString(b, o.Name)
			params := o.Parameters
			if o.Binary || binary {
				params = make(map[string]any, len(o.Parameters)+1)
				for k, v := range o.Parameters {
					params[k] = v
				}
				params["binary_data"] = true
			}
			if len(params) > 0 {
				b = append(b, `,"parameters":`...)
				var err error
				if b, err = appendV2Params(b, params); err != nil {
					return nil, fmt.Errorf("output %q: %w", o.Name, err)
				}
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	params := r.Parameters
	if binary && len(r.Outputs) == 0 {
		// With no outputs named, the server returns all of them, in
		// binary only when the request says so (as tritonclient does).
		params = make(map[string]any, len(r.Parameters)+1)
		for k, v := range r.Parameters {
			params[k] = v
		}
		params["binary_data_output"] = true
	}
	if len(params) > 0 {
		b = append(b, `,"parameters":`...)
		var err error
		if b, err = appendV2Params(b, params); err != nil {
			return nil, fmt.Errorf("the request's parameters: %w", err)
		}
	}
	return append(b, '}'), nil
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// appendV2Params writes params as a JSON object with sorted keys.
func appendV2Params(b []byte, params map[string]any) ([]byte, error) {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		switch v := params[k].(type) {
		case bool:
			b = strconv.AppendBool(b, v)
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case int:
			b = strconv.AppendInt(b, int64(v), 10)
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("parameter %q is %v, which JSON cannot carry", k, v)
			}
			b = strconv.AppendFloat(b, v, 'g', -1, 64)
		case string:
			b = appendJSONString(b, v)
		default:
			return nil, fmt.Errorf("parameter %q is a %T; V2 parameters are bool, int64, float64 or string", k, v)
		}
	}
	return append(b, '}'), nil
}

// appendV2Data writes an input's values as a flat JSON list.
func appendV2Data(b []byte, in *V2Input) ([]byte, error) {
	b = append(b, '[')
	switch in.Datatype {
	case "BOOL":
		for i, v := range in.Bools {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendBool(b, v)
		}
	case "INT8", "INT16", "INT32", "INT64":
		for i, v := range in.Ints {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, v, 10)
		}
	case "UINT8", "UINT16", "UINT32", "UINT64":
		for i, v := range in.Uints {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, v, 10)
		}
	case "BYTES":
		for i, v := range in.Bytes {
			if i > 0 {
				b = append(b, ',')
			}
			if !utf8.Valid(v) {
				return nil, fmt.Errorf("element %d is not UTF-8 text, which V2 JSON cannot carry (the binary tensor extension can)", i)
			}
			b = appendJSONString(b, string(v))
		}
	default: // FP16, BF16, FP32, FP64
		bits := 32
		if in.Datatype == "FP64" {
			bits = 64
		}
		for i, v := range in.Floats {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("element %d is %v, which V2 JSON cannot carry (the binary tensor extension can)", i, v)
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendFloat(b, v, 'g', -1, bits)
		}
	}
	return append(b, ']'), nil
}

// v2RawSize is the size of an input's tensor in the binary extension.
func v2RawSize(in *V2Input) int {
	if in.Datatype == "BYTES" {
		n := 0
		for _, v := range in.Bytes {
			n += 4 + len(v)
		}
		return n
	}
	return v2Datatypes[in.Datatype].size * v2Len(in)
}

func v2Len(in *V2Input) int {
	switch in.Datatype {
	case "BOOL":
		return len(in.Bools)
	case "INT8", "INT16", "INT32", "INT64":
		return len(in.Ints)
	case "UINT8", "UINT16", "UINT32", "UINT64":
		return len(in.Uints)
	case "BYTES":
		return len(in.Bytes)
	}
	return len(in.Floats)
}

// appendV2Raw appends an input's tensor as the binary extension lays it
// out.
func appendV2Raw(b []byte, in *V2Input) []byte {
	le := binary.LittleEndian
	size := v2Datatypes[in.Datatype].size
	switch in.Datatype {
	case "BOOL":
		for _, v := range in.Bools {
			b = append(b, boolByte(v))
		}
	case "INT8", "INT16", "INT32", "INT64":
		for _, v := range in.Ints {
			b = appendIntLE(b, uint64(v), size)
		}
	case "UINT8", "UINT16", "UINT32", "UINT64":
		for _, v := range in.Uints {
			b = appendIntLE(b, v, size)
		}
	case "BYTES":
		for _, v := range in.Bytes {
			b = le.AppendUint32(b, uint32(len(v)))
			b = append(b, v...)
		}
	case "FP16":
		for _, v := range in.Floats {
			b = le.AppendUint16(b, halfBits(v))
		}
	case "BF16":
		for _, v := range in.Floats {
			b = le.AppendUint16(b, bfloat16Bits(v))
		}
	case "FP32":
		for _, v := range in.Floats {
			b = le.AppendUint32(b, math.Float32bits(float32(v)))
		}
	case "FP64":
		for _, v := range in.Floats {
			b = le.AppendUint64(b, math.Float64bits(v))
		}
	}
	return b
}
