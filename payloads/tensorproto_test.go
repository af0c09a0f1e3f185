package payloads

import (
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/loadprof/loadprof/tfproto"
)

func info(dtype tfproto.DataType, dims ...int64) *tfproto.TensorInfo {
	shape := &tfproto.TensorShapeProto{}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &tfproto.TensorShapeProto_Dim{Size: d})
	}
	return &tfproto.TensorInfo{Dtype: dtype, TensorShape: shape}
}

func convert(t *testing.T, body string, sig *tfproto.SignatureDef, opts ConvertOptions) (map[string]*tfproto.TensorProto, error) {
	t.Helper()
	req, err := ParseBody([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return req.ToTensorProtos(sig, opts)
}

func dims(tp *tfproto.TensorProto) []int64 {
	var out []int64
	for _, d := range tp.GetTensorShape().GetDim() {
		out = append(out, d.GetSize())
	}
	return out
}

func TestRowsAreStackedOnTheFirstDimensionWithSignatureDtypes(t *testing.T) {
	sig := &tfproto.SignatureDef{Inputs: map[string]*tfproto.TensorInfo{
		"x":     info(tfproto.DataType_DT_FLOAT, -1, 3),
		"ids":   info(tfproto.DataType_DT_INT64, -1),
		"text":  info(tfproto.DataType_DT_STRING, -1),
		"image": info(tfproto.DataType_DT_STRING, -1),
		"mask":  info(tfproto.DataType_DT_BOOL, -1, 2),
		"small": info(tfproto.DataType_DT_INT8, -1),
	}}
	got, err := convert(t, `{"instances": [
		{"x": [1, 2, 3], "ids": 9007199254740993, "text": "hi", "image": {"b64": "AAE="}, "mask": [true, false], "small": -128},
		{"x": [4, 5.5, NaN], "ids": -1, "text": "yo", "image": {"b64": "AgM="}, "mask": [false, true], "small": 127}
	]}`, sig, ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	x := got["x"]
	if x.Dtype != tfproto.DataType_DT_FLOAT || !reflect.DeepEqual(dims(x), []int64{2, 3}) || x.FloatVal[4] != 5.5 || !math.IsNaN(float64(x.FloatVal[5])) {
		t.Fatalf("x: %v", x)
	}
	if ids := got["ids"]; !reflect.DeepEqual(ids.Int64Val, []int64{9007199254740993, -1}) {
		t.Fatalf("ids lost precision: %v", ids.Int64Val) // 2^53+1 does not survive float64
	}
	if img := got["image"]; string(img.StringVal[0]) != "\x00\x01" || string(got["text"].StringVal[1]) != "yo" {
		t.Fatalf("strings: %v %v", img.StringVal, got["text"].StringVal)
	}
	if m := got["mask"]; !reflect.DeepEqual(m.BoolVal, []bool{true, false, false, true}) || !reflect.DeepEqual(dims(m), []int64{2, 2}) {
		t.Fatalf("mask: %v", m)
	}
	if s := got["small"]; !reflect.DeepEqual(s.IntVal, []int32{-128, 127}) {
		t.Fatalf("small: %v", s)
	}
}

func TestColumnarSingleInputAndTensorContent(t *testing.T) {
	sig := &tfproto.SignatureDef{Inputs: map[string]*tfproto.TensorInfo{"x": info(tfproto.DataType_DT_INT32, 2, 2)}}
	got, err := convert(t, `{"inputs": [[1, 2], [3, -4]]}`, sig, ConvertOptions{TensorContent: true})
	if err != nil {
		t.Fatal(err)
	}
	x := got["x"]
	if len(x.IntVal) != 0 || len(x.TensorContent) != 16 || int32(binary.LittleEndian.Uint32(x.TensorContent[12:])) != -4 {
		t.Fatalf("x: %v", x)
	}
}

func TestHalfAndBfloat16Bits(t *testing.T) {
	for v, want := range map[float64]uint16{1: 0x3c00, -2: 0xc000, 65504: 0x7bff, 1e6: 0x7c00, 0.5: 0x3800, 5.960464477539063e-08: 0x0001} {
		if got := halfBits(v); got != want {
			t.Errorf("halfBits(%v) = %#04x, want %#04x", v, got, want)
		}
	}
	for v, want := range map[float64]uint16{1: 0x3f80, -2: 0xc000, 3.140625: 0x4049} {
		if got := bfloat16Bits(v); got != want {
			t.Errorf("bfloat16Bits(%v) = %#04x, want %#04x", v, got, want)
		}
	}
}

func TestConversionMismatchesNameTheInput(t *testing.T) {
	sig := &tfproto.SignatureDef{Inputs: map[string]*tfproto.TensorInfo{
		"x": info(tfproto.DataType_DT_FLOAT, -1, 2),
		"n": info(tfproto.DataType_DT_UINT8, -1),
	}}
	one := &tfproto.SignatureDef{Inputs: map[string]*tfproto.TensorInfo{"x": info(tfproto.DataType_DT_FLOAT, -1, 2)}}
	cases := []struct {
		body string
		sig  *tfproto.SignatureDef
		want string
	}{
		{`{"instances": [{"x": [1, 2], "n": 1, "z": 3}]}`, sig, `input "z" is not in the signature`},
		{`{"instances": [{"x": [1, 2]}]}`, sig, `input "n" of the signature is missing`},
		{`{"instances": [[1, 2]]}`, sig, "the signature has 2 inputs"},
		{`{"instances": [{"x": [1, 2, 3], "n": 1}]}`, sig, `input "x": dimension 1 is 3, the signature wants 2`},
		{`{"instances": [{"x": 1, "n": 1}]}`, sig, `input "x": rank 1 (shape [1]) does not match the signature's rank 2`},
		{`{"instances": [{"x": [1, 2], "n": 256}]}`, sig, `input "n": line 1: 256 is not an integer that fits in DT_UINT8`},
		{`{"instances": [{"x": [1, 2], "n": 1.5}]}`, sig, `1.5 is not an integer`},
		{`{"instances": [{"x": [1, 2], "n": "a"}]}`, sig, `input "n": the signature wants DT_UINT8, the payload has strings`},
		{`{"instances": [[1, 1e39]]}`, one, "1e39 does not fit in DT_FLOAT"},
	}
	for _, c := range cases {
		_, err := convert(t, c.body, c.sig, ConvertOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.body, err, c.want)
		}
	}
}
