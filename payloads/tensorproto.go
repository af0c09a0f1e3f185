package payloads

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/loadprof/loadprof/tfproto"
)

// ConvertOptions tune ToTensorProtos.
type ConvertOptions struct {
	// TensorContent packs numeric and boolean tensors into tensor_content
	// (little-endian, row-major) instead of the typed *_val fields. TF
	// Serving accepts both; tensor_content is smaller and faster to decode
	// for large tensors.
	TensorContent bool
}

// SignatureNameOr returns the signature a request asks for: its own
// "signature_name", else fallback.
func (r *Request) SignatureNameOr(fallback string) string {
	if r.SignatureName != "" {
		return r.SignatureName
	}
	return fallback
}

// ToTensorProtos converts the request's JSON tensors into the TensorProtos
// of a gRPC PredictRequest, using the dtypes and shapes of sig. Rows of the
// "instances" form are already stacked on the first dimension. Errors name
// the input and what does not fit.
func (r *Request) ToTensorProtos(sig *tfproto.SignatureDef, opts ConvertOptions) (map[string]*tfproto.TensorProto, error) {
	inputs := sig.GetInputs()
	names := make([]string, 0, len(inputs))
	for name := range inputs {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make(map[string]*tfproto.TensorProto, len(r.Inputs))
	for i := range r.Inputs {
		t := &r.Inputs[i]
		name := t.Name
		if name == "" {
			if len(names) != 1 {
				return nil, fmt.Errorf("the signature has %d inputs (%s): name them (objects in \"instances\", or an object in \"inputs\")", len(names), strings.Join(names, ", "))
			}
			name = names[0]
		}
		info, ok := inputs[name]
		if !ok {
			return nil, fmt.Errorf("input %q is not in the signature (inputs: %s)", name, strings.Join(names, ", "))
		}
		tp, err := convertTensor(t, info, opts)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", name, err)
		}
		out[name] = tp
	}
	for _, name := range names {
		if _, ok := out[name]; !ok {
			return nil, fmt.Errorf("input %q of the signature is missing from the payload", name)
		}
	}
	return out, nil
}

func shapeString(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.Itoa(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func sigShapeString(s *tfproto.TensorShapeProto) string {
	parts := make([]string, len(s.GetDim()))
	for i, d := range s.GetDim() {
		parts[i] = strconv.FormatInt(d.GetSize(), 10)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func checkShape(t *Tensor, want *tfproto.TensorShapeProto) error {
	if want == nil || want.GetUnknownRank() {
		return nil
	}
	dims := want.GetDim()
	if len(dims) != len(t.Shape) {
		return fmt.Errorf("rank %d (shape %s) does not match the signature's rank %d (shape %s)", len(t.Shape), shapeString(t.Shape), len(dims), sigShapeString(want))
	}
	for i, d := range dims {
		if d.GetSize() >= 0 && int64(t.Shape[i]) != d.GetSize() {
			return fmt.Errorf("dimension %d is %d, the signature wants %d (shape %s vs %s)", i, t.Shape[i], d.GetSize(), shapeString(t.Shape), sigShapeString(want))
		}
	}
	return nil
}

func convertTensor(t *Tensor, info *tfproto.TensorInfo, opts ConvertOptions) (*tfproto.TensorProto, error) {
	if err := checkShape(t, info.GetTensorShape()); err != nil {
		return nil, err
	}
	dtype := info.GetDtype()
	tp := &tfproto.TensorProto{Dtype: dtype, TensorShape: &tfproto.TensorShapeProto{}}
	for _, d := range t.Shape {
		tp.TensorShape.Dim = append(tp.TensorShape.Dim, &tfproto.TensorShapeProto_Dim{Size: int64(d)})
	}
	want := map[tfproto.DataType]LeafKind{tfproto.DataType_DT_STRING: StringLeaves, tfproto.DataType_DT_BOOL: BoolLeaves}[dtype]
	if want == 0 {
		want = NumberLeaves
	}
	if t.Kind != 0 && t.Kind != want {
		return nil, fmt.Errorf("the signature wants %s, the payload has %s", dtypeName(dtype), t.Kind)
	}
	var content []byte
	le := binary.LittleEndian
	for _, l := range t.Leaves {
		switch dtype {
		case tfproto.DataType_DT_STRING:
			tp.StringVal = append(tp.StringVal, l.Bytes)
		case tfproto.DataType_DT_BOOL:
			if opts.TensorContent {
				content = append(content, boolByte(l.Bool))
			} else {
				tp.BoolVal = append(tp.BoolVal, l.Bool)
			}
		case tfproto.DataType_DT_FLOAT:
			if leafOverflows(l.Num, l.NumText, &fp32Format) {
				return nil, fmt.Errorf("line %d: %s does not fit in DT_FLOAT", l.Line, l.NumText)
			}
			if opts.TensorContent {
				content = le.AppendUint32(content, math.Float32bits(float32(l.Num)))
			} else {
				tp.FloatVal = append(tp.FloatVal, float32(l.Num))
			}
		case tfproto.DataType_DT_DOUBLE:
			if leafOverflows(l.Num, l.NumText, nil) {
				return nil, fmt.Errorf("line %d: %s does not fit in DT_DOUBLE", l.Line, l.NumText)
			}
			if opts.TensorContent {
				content = le.AppendUint64(content, math.Float64bits(l.Num))
			} else {
				tp.DoubleVal = append(tp.DoubleVal, l.Num)
			}
		case tfproto.DataType_DT_HALF, tfproto.DataType_DT_BFLOAT16:
			format := bf16Format
			if dtype == tfproto.DataType_DT_HALF {
				format = fp16Format
			}
			if leafOverflows(l.Num, l.NumText, &format) {
				return nil, fmt.Errorf("line %d: %s does not fit in %s", l.Line, l.NumText, dtypeName(dtype))
			}
			bits := uint16(roundFloatBits(l.Num, format))
			if opts.TensorContent {
				content = le.AppendUint16(content, bits)
			} else {
				tp.HalfVal = append(tp.HalfVal, int32(bits))
			}
		case tfproto.DataType_DT_INT8, tfproto.DataType_DT_INT16, tfproto.DataType_DT_INT32,
			tfproto.DataType_DT_UINT8, tfproto.DataType_DT_UINT16, tfproto.DataType_DT_INT64:
			lo, hi, size := intRange(dtype)
			v, err := strconv.ParseInt(l.NumText, 10, 64)
			if err != nil || v < lo || v > hi {
				return nil, fmt.Errorf("line %d: %s is not an integer that fits in %s", l.Line, l.NumText, dtypeName(dtype))
			}
			switch {
			case opts.TensorContent:
				content = appendIntLE(content, uint64(v), size)
			case dtype == tfproto.DataType_DT_INT64:
				tp.Int64Val = append(tp.Int64Val, v)
			default:
				tp.IntVal = append(tp.IntVal, int32(v))
			}
		case tfproto.DataType_DT_UINT32, tfproto.DataType_DT_UINT64:
			bits := 32
			if dtype == tfproto.DataType_DT_UINT64 {
				bits = 64
			}
			v, err := strconv.ParseUint(l.NumText, 10, bits)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s is not an integer that fits in %s", l.Line, l.NumText, dtypeName(dtype))
			}
			switch {
			case opts.TensorContent:
				content = appendIntLE(content, v, bits/8)
			case bits == 32:
				tp.Uint32Val = append(tp.Uint32Val, uint32(v))
			default:
				tp.Uint64Val = append(tp.Uint64Val, v)
			}
		default:
			return nil, fmt.Errorf("loadprof cannot send %s from JSON", dtypeName(dtype))
		}
	}
	if opts.TensorContent && dtype != tfproto.DataType_DT_STRING {
		tp.TensorContent = content
		if tp.TensorContent == nil {
			tp.TensorContent = []byte{}
		}
	}
	return tp, nil
}

func dtypeName(d tfproto.DataType) string { return d.String() }

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func intRange(d tfproto.DataType) (lo, hi int64, size int) {
	switch d {
	case tfproto.DataType_DT_INT8:
		return math.MinInt8, math.MaxInt8, 1
	case tfproto.DataType_DT_UINT8:
		return 0, math.MaxUint8, 1
	case tfproto.DataType_DT_INT16:
		return math.MinInt16, math.MaxInt16, 2
	case tfproto.DataType_DT_UINT16:
		return 0, math.MaxUint16, 2
	case tfproto.DataType_DT_INT32:
		return math.MinInt32, math.MaxInt32, 4
	}
	return math.MinInt64, math.MaxInt64, 8
}

func appendIntLE(b []byte, v uint64, size int) []byte {
	for i := 0; i < size; i++ {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// bfloat16Bits rounds v to bfloat16 (round to nearest even) and returns its
// bit pattern.
func bfloat16Bits(v float64) uint16 { return uint16(roundFloatBits(v, bf16Format)) }

// halfBits converts v to IEEE 754 binary16 (round to nearest even).
func halfBits(v float64) uint16 { return uint16(roundFloatBits(v, fp16Format)) }

// floatFormat is an IEEE 754 binary interchange format narrower than float64.
type floatFormat struct{ expBits, mantBits uint }

var (
	fp16Format = floatFormat{5, 10}
	bf16Format = floatFormat{8, 7}
	fp32Format = floatFormat{8, 23}
)

// roundFloatBits rounds v to the format (to nearest, ties to even) straight
// from float64 and returns its bit pattern. Going through float32 first would
// round twice, and a value just below a halfway point could end up on the
// wrong side of it (at the top of the range: infinity instead of the
// largest finite value).
func roundFloatBits(v float64, f floatFormat) uint64 {
	b := math.Float64bits(v)
	sign := b >> 63 << (f.expBits + f.mantBits)
	exp := int(b>>52) & 0x7ff
	frac := b & (1<<52 - 1)
	infBits := (uint64(1)<<f.expBits - 1) << f.mantBits
	switch {
	case exp == 0x7ff && frac != 0: // NaN, kept quiet
		return sign | infBits | 1<<(f.mantBits-1)
	case exp == 0x7ff:
		return sign | infBits
	case exp == 0: // float64 subnormals are far below every narrower format's range
		return sign
	}
	bias := 1<<(f.expBits-1) - 1
	e := exp - 1023 + bias // biased exponent in the target format
	m := frac | 1<<52      // 53 significant bits
	shift := 52 - int(f.mantBits)
	if e < 1 { // subnormal in the target: fewer significant bits
		shift += 1 - e
	}
	if shift > 54 { // less than half the smallest subnormal
		return sign
	}
	q := m >> shift
	rem := m & (1<<shift - 1)
	halfway := uint64(1) << (shift - 1)
	if rem > halfway || (rem == halfway && q&1 == 1) {
		q++ // may carry into the exponent, which is the right rounding
	}
	r := q // subnormal: q is the fraction (a carry makes it the smallest normal)
	if e >= 1 {
		r = uint64(e-1)<<f.mantBits + q // q holds the implicit leading 1
	}
	if r >= infBits {
		r = infBits
	}
	return sign | r
}

// roundsToInfinity reports whether a finite v becomes infinite when rounded
// to nearest even in the format: such a value is refused, since the server
// would silently receive infinity instead of the user's number. NaN and
// infinities are not finite values and pass.
func roundsToInfinity(v float64, f floatFormat) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return false
	}
	return roundFloatBits(v, f)&^(1<<(f.expBits+f.mantBits)) == (uint64(1)<<f.expBits-1)<<f.mantBits
}

// leafOverflows reports whether a JSON number does not fit the format: its
// value rounds to infinity, or its text was too large even for float64 (an
// Infinity literal is a deliberate infinity and fits). f nil is float64.
func leafOverflows(num float64, text string, f *floatFormat) bool {
	if math.IsInf(num, 0) {
		return !strings.HasSuffix(text, "Infinity")
	}
	return f != nil && roundsToInfinity(num, *f)
}
