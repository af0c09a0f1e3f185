package load

import (
	"errors"
	"strings"
	"testing"

	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// metadataResponse is what GetModelMetadata answers: the message type a
// Predict call gets back from a server wired to the wrong method.
func metadataResponse(t testing.TB, version int64) []byte {
	sigs := mustMarshal(t, &tfproto.SignatureDefMap{SignatureDef: map[string]*tfproto.SignatureDef{
		"serving_default": {MethodName: "tensorflow/serving/predict", Outputs: map[string]*tfproto.TensorInfo{"y": {Dtype: tfproto.DataType_DT_FLOAT}}},
	}})
	spec := &tfproto.ModelSpec{Name: "m"}
	if version > 0 {
		spec.VersionChoice = &tfproto.ModelSpec_Version{Version: wrapperspb.Int64(version)}
	}
	return mustMarshal(t, &tfproto.GetModelMetadataResponse{ModelSpec: spec, Metadata: map[string]*anypb.Any{
		"signature_def": {TypeUrl: "type.googleapis.com/tensorflow.serving.SignatureDefMap", Value: sigs},
	}})
}

func TestPredictResponseCheckTellsPredictResponsesFromOtherBytes(t *testing.T) {
	check := PredictResponseCheck()
	valid := validPredictResponse(t)
	// float_val unpacked (one tag per value) is as valid as packed.
	unpacked := protowire.AppendTag(nil, 1, protowire.BytesType)
	var tensor []byte
	tensor = protowire.AppendTag(tensor, 1, protowire.VarintType)
	tensor = protowire.AppendVarint(tensor, uint64(tfproto.DataType_DT_FLOAT))
	for range 3 {
		tensor = protowire.AppendTag(tensor, 5, protowire.Fixed32Type)
		tensor = protowire.AppendFixed32(tensor, 0x3f800000)
	}
	var entry []byte
	entry = protowire.AppendTag(entry, 1, protowire.BytesType)
	entry = protowire.AppendString(entry, "y")
	entry = protowire.AppendTag(entry, 2, protowire.BytesType)
	entry = protowire.AppendBytes(entry, tensor)
	unpacked = protowire.AppendBytes(unpacked, entry)
	// Fields the descriptor does not know are allowed, as a newer server may
	// add some.
	unknown := protowire.AppendTag(append([]byte{}, valid...), 99, protowire.BytesType)
	unknown = protowire.AppendString(unknown, "future")
	withSpec := mustMarshal(t, &tfproto.PredictResponse{ModelSpec: &tfproto.ModelSpec{Name: "m", SignatureName: "serving_default"},
		Outputs: map[string]*tfproto.TensorProto{"s": {Dtype: tfproto.DataType_DT_STRING, StringVal: [][]byte{{0xff, 0x00}}}}})
	for name, msg := range map[string][]byte{"packed": valid, "unpacked": unpacked, "unknown field": unknown, "model spec and bytes": withSpec} {
		if err := check(msg); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	badKey := protowire.AppendTag(nil, 1, protowire.BytesType)
	badKey = protowire.AppendBytes(badKey, protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "\xff\xfe"))
	wrongWire := protowire.AppendTag(nil, 2, protowire.VarintType) // model_spec as a number
	wrongWire = protowire.AppendVarint(wrongWire, 7)
	badPacked := protowire.AppendTag(nil, 1, protowire.BytesType)
	badPacked = protowire.AppendBytes(badPacked, protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType),
		protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), []byte{1, 2, 3}))) // 3 bytes of packed floats
	for name, c := range map[string]struct {
		msg  []byte
		want string
	}{
		"garbage":                      {[]byte("<html>502 Bad Gateway</html>"), "not a tensorflow.serving.PredictResponse"},
		"truncated":                    {valid[:len(valid)-3], "not a tensorflow.serving.PredictResponse"},
		"empty":                        {nil, "without an output tensor"},
		"metadata response":            {metadataResponse(t, 0), "not a tensorflow.serving.PredictResponse: field 2.2.1 (in google.protobuf.Int64Value): encoded as length-delimited"},
		"metadata without metadata":    {mustMarshal(t, &tfproto.GetModelMetadataResponse{ModelSpec: &tfproto.ModelSpec{Name: "m"}}), "without an output tensor"},
		"output without dtype":         {mustMarshal(t, &tfproto.PredictResponse{Outputs: map[string]*tfproto.TensorProto{"y": {FloatVal: []float32{1}}}}), "without an output tensor"},
		"output of an unknown dtype":   {mustMarshal(t, &tfproto.PredictResponse{Outputs: map[string]*tfproto.TensorProto{"y": {Dtype: 999}}}), "without an output tensor"},
		"map key not UTF-8":            {badKey, "string is not UTF-8"},
		"wire type of a message":       {wrongWire, "field 2 (in tensorflow.serving.PredictResponse): encoded as a varint, the field's type is length-delimited"},
		"packed floats not a multiple": {badPacked, "field 1.2.5 (in tensorflow.TensorProto): packed values"},
	} {
		err := check(c.msg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", name, err, c.want)
		}
	}
}

func TestPredictResponseCheckDoesNotAllocate(t *testing.T) {
	check := PredictResponseCheck()
	msg := validPredictResponse(t)
	if n := testing.AllocsPerRun(100, func() {
		if err := check(msg); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%.1f allocations per check", n)
	}
}

// FuzzResponseCheckAgreesWithProtoUnmarshal: what the wire check accepts,
// proto.Unmarshal accepts as a PredictResponse. The check is stricter in
// one way only: proto.Unmarshal keeps a field of the wrong wire type as an
// unknown field.
func FuzzResponseCheckAgreesWithProtoUnmarshal(f *testing.F) {
	f.Add(validPredictResponse(f))
	f.Add(metadataResponse(f, 3))
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x05, 0x0a, 0x01, 'y', 0x12, 0x00})
	check := NewResponseCheck((&tfproto.PredictResponse{}).ProtoReflect().Descriptor())
	f.Fuzz(func(t *testing.T, msg []byte) {
		wireErr := check(msg)
		protoErr := proto.Unmarshal(msg, &tfproto.PredictResponse{})
		var mismatch *wireError
		if wireErr == nil && protoErr != nil || wireErr != nil && protoErr == nil && !(errors.As(wireErr, &mismatch) && strings.Contains(mismatch.err.Error(), "encoded as")) {
			t.Fatalf("% x: wire check %v, proto.Unmarshal %v", msg, wireErr, protoErr)
		}
	})
}

func BenchmarkGRPCPredictResponseCheck(b *testing.B) {
	check := PredictResponseCheck()
	small := validPredictResponse(b)
	values := make([]float32, 1000)
	large := mustMarshal(b, &tfproto.PredictResponse{ModelSpec: &tfproto.ModelSpec{Name: "m"}, Outputs: map[string]*tfproto.TensorProto{
		"scores": {Dtype: tfproto.DataType_DT_FLOAT, TensorShape: &tfproto.TensorShapeProto{Dim: []*tfproto.TensorShapeProto_Dim{{Size: 1000}}}, FloatVal: values},
		"labels": {Dtype: tfproto.DataType_DT_STRING, StringVal: [][]byte{[]byte("cat"), []byte("dog")}},
	}})
	for _, c := range []struct {
		name string
		msg  []byte
	}{{"2floats", small}, {"1000floats", large}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.msg)))
			for b.Loop() {
				if err := check(c.msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
