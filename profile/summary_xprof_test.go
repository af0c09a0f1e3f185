package profile

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func TestParseOpNameSplitsNamesAsXprof(t *testing.T) {
	for _, c := range []struct {
		full      string
		name, typ string
		known     bool
	}{
		{"StatefulPartitionedCall/MatMul:MatMul", "StatefulPartitionedCall/MatMul", "MatMul", true},
		{"sequential_1/dense_b_1/Relu:Relu", "sequential_1/dense_b_1/Relu", "Relu", true},
		{"model/dense/MatMul:_FusedMatMul", "model/dense/MatMul", "_FusedMatMul", true},
		{"ns>scope/op-1.x:AddV2", "ns>scope/op-1.x", "AddV2", true},
		{"Iterator::Batch::Map", "Iterator::Batch::Map", "Dataset", true},
		{"MEMCPYHToD stream 1", "MEMCPYHToD stream 1", "MemcpyHToD", true},
		{"jit_f/dot_general:dot_general[dims=((1,), (0,))]", "jit_f/dot_general", "dot_general", true},
		{"jit_f/add_3:", "jit_f/add_3", "add", true},          // JAX: the type derived from the name
		{"scope/MatMul_1:", "scope/MatMul_1", "MatMul", true}, // not JAX: TensorFlow, derived
		// Runtime markers and labels are not ops.
		{"KernelAndDeviceFunc::Run", "KernelAndDeviceFunc::Run", "", false},
		{"ExecutorState::Process", "ExecutorState::Process", "", false},
		{"EagerLocalExecute: _EagerConst", "EagerLocalExecute: _EagerConst", "", false},
		{"bg_fn", "bg_fn", "", false},
		{"signature_wrapper_serve", "signature_wrapper_serve", "", false},
		{"tf.constant", "tf.constant", "", false},
		{"a b:MatMul", "a b:MatMul", "", false},
	} {
		got := parseOpName(c.full)
		if got != (tfOp{c.name, c.typ, c.known}) {
			t.Errorf("parseOpName(%q) = %+v, want name %q type %q known %v", c.full, got, c.name, c.typ, c.known)
		}
	}
}

// Real TensorFlow 2.21 traces, with xprof 2.24.2's framework_op_stats of
// each, made once by conformance/opstats.py (xprof's own conversion,
// raw_to_tool_data.xspace_to_tool_data(..., "framework_op_stats", {}),
// on a copy of the trace alone in a directory: xprof caches its op stats
// beside the trace) and kept beside it as NAME.xprof.json.
//
// tf221-dense-rest: what TF 2.21's profiler server returned to loadprof
// under 50 req/s of REST load on conformance/server.py's dense model (1.5 s
// window); each event metadata's display_name is the op's type, and most
// of the host's time is in runtime markers.
//
// tf221-keras-tfdata: conformance/keras_trace.py (8 steps): grappler's
// fused ops named after the layers' activations, ops nested in ops, and
// tf.data's iterators, which xprof counts as ops of type Dataset.
const tf221Trace = "testdata/tf221-dense-rest.xplane.pb"

var realTraces = []string{"tf221-dense-rest", "tf221-keras-tfdata"}

// xprofOpStats is what conformance/opstats.py prints.
type xprofOpStats struct {
	Ops []struct {
		HostOrDevice string  `json:"host_or_device"`
		Type         string  `json:"type"`
		Name         string  `json:"name"`
		Occurrences  int64   `json:"occurrences"`
		TotalUs      float64 `json:"total_us"`
		SelfUs       float64 `json:"self_us"`
		HostShare    float64 `json:"host_share"`
	} `json:"ops"`
	IdleUs map[string]float64 `json:"idle_us"`
}

// TestRealTensorFlowTracesAgreeWithXprof: the same host ops as xprof, in
// its order, with its names, types, occurrences, self and total times (to
// the ns: xprof prints µs with 3 decimals), shares and IDLE time.
func TestRealTensorFlowTracesAgreeWithXprof(t *testing.T) {
	for _, name := range realTraces {
		t.Run(name, func(t *testing.T) {
			trace := filepath.Join("testdata", name+".xplane.pb")
			raw, err := os.ReadFile(filepath.Join("testdata", name+".xprof.json"))
			if err != nil {
				t.Fatal(err)
			}
			var x xprofOpStats
			if err := json.Unmarshal(raw, &x); err != nil {
				t.Fatal(err)
			}
			space, _, err := ReadXSpace(trace)
			if err != nil {
				t.Fatal(err)
			}
			sum, err := SummarizeFiles([]string{trace})
			if err != nil {
				t.Fatal(err)
			}
			sameSummary(t, "decoded and streamed", Summarize(space), sum)
			if len(x.Ops) == 0 || len(sum.Ops) != len(x.Ops) || len(sum.Stats) != 1 || sum.Stats[0].Plane != "/host:CPU" || sum.Stats[0].Device {
				t.Fatalf("planes %+v, %d ops; xprof %d", sum.Stats, len(sum.Ops), len(x.Ops))
			}
			var shares float64
			nested := false
			for i, xo := range x.Ops {
				op := sum.Ops[i]
				if xo.HostOrDevice != "Host" || op.Name != xo.Name || op.Type != xo.Type || op.Count != xo.Occurrences ||
					math.Abs(op.SelfMs*1000-xo.SelfUs) > 0.0006 || math.Abs(op.TotalMs*1000-xo.TotalUs) > 0.0006 || math.Abs(op.Share-xo.HostShare) > 1e-6 {
					t.Errorf("op %d: %+v; xprof: %+v", i, op, xo)
				}
				shares += op.Share
				nested = nested || op.TotalMs > op.SelfMs
			}
			if math.Abs(shares-1) > 1e-9 {
				t.Errorf("shares add up to %v", shares)
			}
			st := sum.Stats[0]
			if idle := (st.LineMs - st.OpMs) * 1000; math.Abs(idle-x.IdleUs["Host"]) > 0.001 {
				t.Errorf("idle %.3f µs, xprof's %.3f", idle, x.IdleUs["Host"])
			}
			for _, op := range sum.Ops {
				switch op.Name {
				case "KernelAndDeviceFunc::Run", "bg_fn", "ExecutorState::Process", "signature_wrapper_serve", "MatMul", "_FusedMatMul":
					t.Errorf("%s is a row of its own: %+v", op.Name, op)
				}
			}
			if name == "tf221-keras-tfdata" && (!nested || !strings.Contains(string(raw), `"sequential_1/dense_b_1/Relu"`)) {
				t.Errorf("the keras trace has no nested op or no sequential_1/dense_b_1/Relu")
			}
		})
	}
}

// deviceSpace is a host with one op and three device planes: a GPU with
// two streams (kernels named by their tf_op stat, one not) and the lines
// that regroup them (modules, a derived line), another GPU, and a TPU
// whose op line names its ops in their metadata's tf_op stat.
func deviceSpace() *tfproto.XSpace {
	ms := func(md, start, dur int64) *tfproto.XEvent { return ev(md, start*1_000_000, dur*1_000_000) }
	withStat := func(e *tfproto.XEvent, st *tfproto.XStat) *tfproto.XEvent {
		e.Stats = append(e.Stats, st)
		return e
	}
	tfOpStats := map[int64]*tfproto.XStatMetadata{7: {Id: 7, Name: "tf_op"}, 8: {Id: 8, Name: "m/dense/MatMul:MatMul"}}
	host := &tfproto.XPlane{Id: 1, Name: "/host:CPU",
		EventMetadata: map[int64]*tfproto.XEventMetadata{1: {Id: 1, Name: "m/dense/MatMul:MatMul", DisplayName: "MatMul"}, 2: {Id: 2, Name: "KernelAndDeviceFunc::Run"}},
		Lines:         []*tfproto.XLine{{Id: 1, TimestampNs: 0, Events: []*tfproto.XEvent{ms(2, 0, 10), ms(1, 1, 4)}}}}
	gpu0 := &tfproto.XPlane{Id: 2, Name: "/device:GPU:0", StatMetadata: tfOpStats,
		EventMetadata: map[int64]*tfproto.XEventMetadata{1: {Id: 1, Name: "volta_sgemm_128x64_nn"}, 2: {Id: 2, Name: "relu_kernel"}, 3: {Id: 3, Name: "module_1"}},
		Lines: []*tfproto.XLine{
			{Id: 1, Name: "Stream #1(Compute)", TimestampNs: 2_000_000, Events: []*tfproto.XEvent{
				withStat(ms(1, 0, 2), &tfproto.XStat{MetadataId: 7, Value: &tfproto.XStat_RefValue{RefValue: 8}}),
				ms(1, 3, 1)}},
			{Id: 2, Name: "Stream #2(Compute)", TimestampNs: 2_000_000, Events: []*tfproto.XEvent{
				withStat(ms(2, 1, 1), &tfproto.XStat{MetadataId: 7, Value: &tfproto.XStat_StrValue{StrValue: "m/dense/Relu:Relu"}})}},
			{Id: 3, Name: "XLA Modules", TimestampNs: 2_000_000, Events: []*tfproto.XEvent{ms(3, 0, 4)}},
			{Id: derivedLineMin + 3, Name: "TensorFlow Ops", TimestampNs: 2_000_000, Events: []*tfproto.XEvent{ms(3, 0, 4)}},
		}}
	gpu10 := &tfproto.XPlane{Id: 3, Name: "/device:GPU:10", EventMetadata: map[int64]*tfproto.XEventMetadata{1: {Id: 1, Name: "memcpy"}},
		Lines: []*tfproto.XLine{{Id: 1, Name: "Stream #1", TimestampNs: 0, Events: []*tfproto.XEvent{ms(1, 0, 1)}}}}
	gpu2 := &tfproto.XPlane{Id: 4, Name: "/device:GPU:2", EventMetadata: map[int64]*tfproto.XEventMetadata{1: {Id: 1, Name: "memcpy"}},
		Lines: []*tfproto.XLine{{Id: 1, Name: "Stream #1", TimestampNs: 0, Events: []*tfproto.XEvent{ms(1, 0, 2)}}}}
	tpu := &tfproto.XPlane{Id: 5, Name: "/device:TPU:0", StatMetadata: tfOpStats,
		EventMetadata: map[int64]*tfproto.XEventMetadata{
			1: {Id: 1, Name: "fusion.3", Stats: []*tfproto.XStat{{MetadataId: 7, Value: &tfproto.XStat_StrValue{StrValue: "m/dense/BiasAdd:BiasAdd"}}}},
			2: {Id: 2, Name: "copy.1"},
			3: {Id: 3, Name: "jit_serve"}},
		Lines: []*tfproto.XLine{
			{Id: 1, Name: "XLA Modules", TimestampNs: 0, Events: []*tfproto.XEvent{ms(3, 0, 9)}},
			{Id: 2, Name: "XLA Ops", TimestampNs: 0, Events: []*tfproto.XEvent{ms(1, 0, 3), ms(2, 5, 1), ms(1, 7, 1)}},
		}}
	env := &tfproto.XPlane{Id: 6, Name: "Task Environment"}
	return &tfproto.XSpace{Planes: []*tfproto.XPlane{tpu, gpu10, host, gpu0, env, gpu2}}
}

func TestDevicePlanesAreSummarisedApartFromTheHost(t *testing.T) {
	data, err := proto.Marshal(deviceSpace())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gpu.xplane.pb")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := SummarizeFiles([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	sameSummary(t, "decoded", Summarize(deviceSpace()), sum)
	wantStats := []PlaneStats{
		{Plane: "/host:CPU", Lines: 1, OpMs: 4, LineMs: 4, SpanMs: 4, Ops: 1},
		{Plane: "/device:GPU:0", Device: true, Lines: 2, OpMs: 4, LineMs: 5, SpanMs: 4, Ops: 3},
		{Plane: "/device:GPU:2", Device: true, Lines: 1, OpMs: 2, LineMs: 2, SpanMs: 2, Ops: 1},
		{Plane: "/device:GPU:10", Device: true, Lines: 1, OpMs: 1, LineMs: 1, SpanMs: 1, Ops: 1},
		{Plane: "/device:TPU:0", Device: true, Lines: 1, OpMs: 5, LineMs: 8, SpanMs: 8, Ops: 2},
	}
	if len(sum.Stats) != len(wantStats) {
		t.Fatalf("planes %+v", sum.Stats)
	}
	for i, w := range wantStats {
		if sum.Stats[i] != w {
			t.Errorf("plane %d: %+v, want %+v", i, sum.Stats[i], w)
		}
	}
	want := []Op{
		{Name: "m/dense/MatMul", Type: "MatMul", Plane: "/host:CPU", Count: 1, TotalMs: 4, SelfMs: 4, Share: 1},
		{Name: "m/dense/MatMul", Type: "MatMul", Plane: "/device:GPU:0", Count: 1, TotalMs: 2, SelfMs: 2, Share: 0.5},
		{Name: "m/dense/Relu", Type: "Relu", Plane: "/device:GPU:0", Count: 1, TotalMs: 1, SelfMs: 1, Share: 0.25},
		{Name: "volta_sgemm_128x64_nn", Plane: "/device:GPU:0", Count: 1, TotalMs: 1, SelfMs: 1, Share: 0.25},
		{Name: "memcpy", Plane: "/device:GPU:2", Count: 1, TotalMs: 2, SelfMs: 2, Share: 1},
		{Name: "memcpy", Plane: "/device:GPU:10", Count: 1, TotalMs: 1, SelfMs: 1, Share: 1},
		{Name: "m/dense/BiasAdd", Type: "BiasAdd", Plane: "/device:TPU:0", Count: 2, TotalMs: 4, SelfMs: 4, Share: 0.8},
		{Name: "copy.1", Plane: "/device:TPU:0", Count: 1, TotalMs: 1, SelfMs: 1, Share: 0.2},
	}
	if len(sum.Ops) != len(want) {
		t.Fatalf("ops %+v", sum.Ops)
	}
	for i, w := range want {
		if sum.Ops[i] != w {
			t.Errorf("op %d: %+v, want %+v", i, sum.Ops[i], w)
		}
	}
	// The table shows each plane on its own, with its busy time.
	var buf bytes.Buffer
	sum.Write(&buf, 1)
	out := buf.String()
	host, gpu := strings.Index(out, "/host:CPU"), strings.Index(out, "/device:GPU:0")
	if host < 0 || gpu < host || !strings.Contains(out, "/device:GPU:0, device ops: 4.000 ms in ops summed over 2 lines (80.0% of their 5.0 ms from first op to last), span 4.0 ms") || strings.Contains(out, "m/dense/Relu") {
		t.Fatalf("table:\n%s", out)
	}
	if top := sum.Top(1); len(top) != 5 || top[1].Plane != "/device:GPU:0" || top[1].Name != "m/dense/MatMul" {
		t.Fatalf("Top(1): %+v", top)
	}
}

// A line's id and name may follow its events (protobuf allows any order):
// the stream then reads the line's events again under the right name.
func TestALineNamedAfterItsEventsIsReadUnderItsName(t *testing.T) {
	event := func(md, offsetPs, durPs uint64) []byte {
		var e []byte
		e = protowire.AppendTag(e, xeventMetadataID, protowire.VarintType)
		e = protowire.AppendVarint(e, md)
		e = protowire.AppendTag(e, xeventOffsetPs, protowire.VarintType)
		e = protowire.AppendVarint(e, offsetPs)
		e = protowire.AppendTag(e, xeventDurationPs, protowire.VarintType)
		e = protowire.AppendVarint(e, durPs)
		return protowire.AppendBytes(protowire.AppendTag(nil, xlineEvents, protowire.BytesType), e)
	}
	line := func(tail []byte, events ...[]byte) []byte {
		var l []byte
		for _, e := range events {
			l = append(l, e...)
		}
		l = append(l, tail...)
		return protowire.AppendBytes(protowire.AppendTag(nil, xplaneLines, protowire.BytesType), l)
	}
	client := protowire.AppendString(protowire.AppendTag(nil, xlineName, protowire.BytesType), ClientLinePrefix+"1")
	derivedID := derivedLineMin + 1
	derived := protowire.AppendVarint(protowire.AppendTag(nil, xlineID, protowire.VarintType), uint64(derivedID))
	thread := protowire.AppendString(protowire.AppendTag(nil, xlineName, protowire.BytesType), "tf_Compute/1")
	md, _ := proto.Marshal(&tfproto.XPlane{Name: "/host:CPU", EventMetadata: map[int64]*tfproto.XEventMetadata{
		1: {Id: 1, Name: "a/MatMul:MatMul"}, 2: {Id: 2, Name: "a/Relu:Relu"}}})
	var plane []byte
	plane = append(plane, md...)
	plane = append(plane, line(client, event(1, 0, 5000))...)
	plane = append(plane, line(derived, event(1, 0, 7000))...)
	plane = append(plane, line(thread, event(1, 0, 4000), event(2, 1000, 1000))...)
	data := protowire.AppendBytes(protowire.AppendTag(nil, xspacePlanes, protowire.BytesType), plane)
	path := filepath.Join(t.TempDir(), "late.xplane.pb")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := SummarizeFiles([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	var space tfproto.XSpace
	if err := proto.Unmarshal(data, &space); err != nil {
		t.Fatal(err)
	}
	sameSummary(t, "decoded", got, Summarize(&space))
	if len(got.Ops) != 2 || got.Ops[0].Name != "a/MatMul" || got.Ops[0].Count != 1 || got.Ops[0].SelfMs != 3e-6 || got.Stats[0].Lines != 1 {
		t.Fatalf("ops %+v, planes %+v", got.Ops, got.Stats)
	}
}
