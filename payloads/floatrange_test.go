package payloads

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/loadprof/loadprof/tfproto"
)

// floatRangeCase is a JSON number and what it becomes in a datatype: the
// little-endian bytes of its round-to-nearest-even value, or nil when that
// value is infinite and the number must be refused.
type floatRangeCase struct {
	datatype string
	text     string
	want     []byte
}

func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// Halfway points between each format's largest finite value and infinity:
// ties go to infinity (the largest finite value has an odd significand).
var (
	bf16Halfway = (2 - 1.0/256) * math.Pow(2, 127)
	fp32Halfway = (2 - 1.0/(1<<24)) * math.Pow(2, 127)
)

var floatRangeCases = []floatRangeCase{
	{"FP16", "65504", le16(0x7bff)},
	{"FP16", "65519", le16(0x7bff)},
	{"FP16", "-65519.99", le16(0xfbff)},
	{"FP16", "65520", nil},
	{"FP16", "1e39", nil},
	{"BF16", "3.39e38", le16(0x7f7f)},
	// Just below the halfway point: rounding through float32 first lands on
	// the halfway point and then on infinity.
	{"BF16", fmt.Sprint(math.Nextafter(bf16Halfway, 0)), le16(0x7f7f)},
	{"BF16", fmt.Sprint(bf16Halfway), nil},
	{"BF16", "3.4e38", nil},
	{"BF16", "-1e39", nil},
	{"FP32", "3.4028235e38", le32(0x7f7fffff)},
	{"FP32", "-3.4028235e38", le32(0xff7fffff)},
	{"FP32", fmt.Sprint(math.Nextafter(fp32Halfway, 0)), le32(0x7f7fffff)},
	{"FP32", fmt.Sprint(fp32Halfway), nil},
	{"FP32", "3.4028236e38", nil},
	{"FP32", "1e39", nil},
	{"FP32", "1e400", nil},
}

func TestV2FloatRangeIsJudgedByTheRoundedValue(t *testing.T) {
	for _, c := range floatRangeCases {
		body := fmt.Sprintf(`{"inputs": [{"name": "x", "shape": [1], "datatype": %q, "data": [%s]}]}`, c.datatype, c.text)
		req, err := ParseV2Body([]byte(body))
		if c.want == nil {
			if err == nil || !strings.Contains(err.Error(), "does not fit in "+c.datatype) {
				t.Errorf("%s %s: err %v, want refused as not fitting", c.datatype, c.text, err)
			}
			// The same number in a TF Serving body converted with V2 metadata.
			tf, err := ParseBody([]byte(`{"instances": [` + c.text + `]}`))
			if err != nil {
				t.Fatal(err)
			}
			_, err = tf.ToV2(&V2ModelMetadata{Inputs: []V2TensorMetadata{{Name: "x", Datatype: c.datatype, Shape: []int64{-1}}}})
			if err == nil || !strings.Contains(err.Error(), "does not fit") {
				t.Errorf("ToV2 %s %s: err %v, want refused", c.datatype, c.text, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %s: %v", c.datatype, c.text, err)
			continue
		}
		body2, n, err := req.RenderBinary()
		if err != nil {
			t.Fatalf("%s %s: binary: %v", c.datatype, c.text, err)
		}
		if got := body2[n:]; string(got) != string(c.want) {
			t.Errorf("%s %s: binary % x, want % x", c.datatype, c.text, got, c.want)
		}
		if _, err := req.RenderJSON(); err != nil {
			t.Errorf("%s %s: JSON: %v", c.datatype, c.text, err)
		}
		raw, err := req.ToModelInferRequest("m", "", V2ProtoOptions{Raw: true})
		if err != nil {
			t.Fatalf("%s %s: gRPC raw: %v", c.datatype, c.text, err)
		}
		if got := raw.RawInputContents[0]; string(got) != string(c.want) {
			t.Errorf("%s %s: gRPC raw % x, want % x", c.datatype, c.text, got, c.want)
		}
		if c.datatype == "FP32" {
			typed, err := req.ToModelInferRequest("m", "", V2ProtoOptions{})
			if err != nil {
				t.Fatalf("%s %s: gRPC typed: %v", c.datatype, c.text, err)
			}
			if got := math.Float32bits(typed.Inputs[0].Contents.Fp32Contents[0]); got != binary.LittleEndian.Uint32(c.want) {
				t.Errorf("%s %s: gRPC typed %#x, want % x", c.datatype, c.text, got, c.want)
			}
		}
	}
}

// Values that reach the gRPC encoder without passing the JSON parser (as
// float64s) are judged by the same rule.
func TestV2ProtoRefusesFloatsThatRoundToInfinity(t *testing.T) {
	for _, c := range floatRangeCases {
		if strings.HasPrefix(c.text, "1e400") {
			continue // not a float64
		}
		var v float64
		fmt.Sscan(c.text, &v)
		req := &V2Request{Inputs: []V2Input{{Name: "x", Datatype: c.datatype, Shape: []int64{1}, Floats: []float64{v}}}}
		for _, raw := range []bool{false, true} {
			if !raw && c.datatype != "FP32" {
				continue
			}
			_, err := req.ToModelInferRequest("m", "", V2ProtoOptions{Raw: raw})
			if refused := err != nil; refused != (c.want == nil) {
				t.Errorf("%s %s raw=%v: err %v, want refused=%v", c.datatype, c.text, raw, err, c.want == nil)
			}
		}
	}
	// Infinity and NaN are values the user wrote, and pass.
	req := &V2Request{Inputs: []V2Input{{Name: "x", Datatype: "FP16", Shape: []int64{2}, Floats: []float64{math.Inf(1), math.NaN()}}}}
	if _, err := req.ToModelInferRequest("m", "", V2ProtoOptions{Raw: true}); err != nil {
		t.Fatal(err)
	}
}

func TestTFFloatRangeIsJudgedByTheRoundedValue(t *testing.T) {
	dtypes := map[string]tfproto.DataType{"FP16": tfproto.DataType_DT_HALF, "BF16": tfproto.DataType_DT_BFLOAT16, "FP32": tfproto.DataType_DT_FLOAT}
	for _, c := range floatRangeCases {
		dtype := dtypes[c.datatype]
		sig := &tfproto.SignatureDef{Inputs: map[string]*tfproto.TensorInfo{"x": info(dtype, -1)}}
		for _, content := range []bool{false, true} {
			got, err := convert(t, `{"instances": [`+c.text+`]}`, sig, ConvertOptions{TensorContent: content})
			if c.want == nil {
				if err == nil || !strings.Contains(err.Error(), "does not fit in "+dtype.String()) {
					t.Errorf("%s %s: err %v, want refused", dtype, c.text, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s %s: %v", dtype, c.text, err)
				continue
			}
			x := got["x"]
			var bytes []byte
			switch {
			case content:
				bytes = x.TensorContent
			case dtype == tfproto.DataType_DT_FLOAT:
				bytes = le32(math.Float32bits(x.FloatVal[0]))
			default:
				bytes = le16(uint16(x.HalfVal[0]))
			}
			if string(bytes) != string(c.want) {
				t.Errorf("%s %s content=%v: % x, want % x", dtype, c.text, content, bytes, c.want)
			}
		}
	}
	// An Infinity literal is the user's own infinity.
	sig := &tfproto.SignatureDef{Inputs: map[string]*tfproto.TensorInfo{"x": info(tfproto.DataType_DT_HALF, -1)}}
	if _, err := convert(t, `{"instances": [Infinity, -Infinity, NaN]}`, sig, ConvertOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestRoundFloatBitsSubnormalsAndCarries(t *testing.T) {
	for _, c := range []struct {
		v    float64
		f    floatFormat
		want uint64
	}{
		{math.Pow(2, -24), fp16Format, 0x0001},                  // smallest FP16 subnormal
		{math.Pow(2, -25), fp16Format, 0x0000},                  // halfway to it: ties to even (zero)
		{math.Pow(2, -25) * 1.0001, fp16Format, 0x0001},         // just above halfway
		{math.Pow(2, -14) * (1 - 1.0/4096), fp16Format, 0x0400}, // rounds up into the smallest normal
		{1 + 1.0/2048, fp16Format, 0x3c00},                      // halfway: ties to even
		{1 + 3.0/2048, fp16Format, 0x3c02},
		{math.Copysign(0, -1), bf16Format, 0x8000},
		{1e-300, fp32Format, 0},
		{math.Pow(2, -149), fp32Format, 1},
		{1.5, fp32Format, uint64(math.Float32bits(1.5))},
	} {
		if got := roundFloatBits(c.v, c.f); got != c.want {
			t.Errorf("roundFloatBits(%g, %v) = %#x, want %#x", c.v, c.f, got, c.want)
		}
	}
}
