package conformance

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/protobuf/proto"
)

// xprofOpStats is what opstats.py prints: xprof's framework_op_stats of
// a trace, the table TensorBoard's "TensorFlow stats" shows.
type xprofOpStats struct {
	Ops []struct {
		HostOrDevice string  `json:"host_or_device"`
		Type         string  `json:"type"`
		Name         string  `json:"name"`
		Occurrences  int64   `json:"occurrences"`
		TotalUs      float64 `json:"total_us"`
		SelfUs       float64 `json:"self_us"`
		HostShare    float64 `json:"host_share"`
		DeviceShare  float64 `json:"device_share"`
	} `json:"ops"`
	IdleUs map[string]float64 `json:"idle_us"`
}

func xprofFrameworkOpStats(t *testing.T, files ...string) xprofOpStats {
	t.Helper()
	cmd := exec.Command(python, append([]string{"opstats.py"}, files...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("opstats.py: %v: %s", err, stderr.Bytes())
	}
	var s xprofOpStats
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("opstats.py: %v: %s", err, out)
	}
	return s
}

// TestTraceSummaryAgreesWithXprofsFrameworkOpStats captures a trace of
// real REST load from TensorFlow's profiler server and compares loadprof's
// summary of it with xprof's framework_op_stats of the same file.
func TestTraceSummaryAgreesWithXprofsFrameworkOpStats(t *testing.T) {
	need(t)
	agreesWithXprof(t, profiledRESTRun(t).Profile.Files[0])
}

// TestKerasAndTfDataTraceSummaryAgreesWithXprof does the same for a trace
// TensorFlow's own profiler takes of a Keras model fed by tf.data
// (keras_trace.py): fused ops named after the layers' activations, ops
// nested in ops, and tf.data's iterators, which xprof counts as ops.
func TestKerasAndTfDataTraceSummaryAgreesWithXprof(t *testing.T) {
	need(t)
	logdir := t.TempDir()
	cmd := exec.Command(python, "keras_trace.py", logdir, "10")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("keras_trace.py: %v: %s", err, out)
	}
	sum := agreesWithXprof(t, logdir)
	fused := false
	for _, op := range sum.Ops {
		fused = fused || op.Type == "_FusedMatMul" && strings.HasPrefix(op.Name, "sequential")
	}
	if !fused {
		t.Errorf("no _FusedMatMul op of the Keras model: %+v", sum.Ops)
	}
}

// agreesWithXprof compares loadprof's summary of a trace (what `loadprof
// trace summary PATH` prints) with xprof's framework_op_stats of the same
// file: the same host ops (names, types, occurrences) in the same order,
// self and total times within 1%, the same shares, the same IDLE time;
// runtime markers are in neither.
func agreesWithXprof(t *testing.T, path string) profile.Summary {
	t.Helper()
	sum, files, err := profile.SummarizePath(path)
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	sum.Write(&table, 20)
	t.Logf("loadprof trace summary %s:\n%s", files[0], table.String())
	x := xprofFrameworkOpStats(t, files...)

	var host []profile.Op
	for _, op := range sum.Ops {
		if op.Plane == "/host:CPU" {
			host = append(host, op)
		}
	}
	var want []int
	for i, op := range x.Ops {
		if op.HostOrDevice == "Host" {
			want = append(want, i)
		}
	}
	if len(want) == 0 || len(host) != len(want) {
		t.Fatalf("loadprof's summary has %d host ops, xprof's framework_op_stats %d: %+v", len(host), len(want), x.Ops)
	}
	within := func(ours, theirs float64) bool { return math.Abs(ours-theirs) <= 0.01*theirs }
	var shares float64
	for rank, i := range want {
		xo := x.Ops[i]
		op := host[rank]
		// Ops whose self times are within 1% of each other may rank either way.
		if op.Name != xo.Name {
			other := -1
			for j, o := range host {
				if o.Name == xo.Name {
					other = j
				}
			}
			if other < 0 || !within(host[other].SelfMs*1000, op.SelfMs*1000) {
				t.Errorf("rank %d: loadprof %s, xprof %s (self %.3f µs)", rank, op.Name, xo.Name, xo.SelfUs)
				continue
			}
			op = host[other]
		}
		if op.Type != xo.Type || op.Count != xo.Occurrences || !within(op.SelfMs*1000, xo.SelfUs) || !within(op.TotalMs*1000, xo.TotalUs) ||
			math.Abs(op.Share-xo.HostShare) > 0.001 {
			t.Errorf("%s: loadprof type %s count %d self %.3f µs total %.3f µs share %.4f; xprof type %s count %d self %.3f µs total %.3f µs share %.4f",
				xo.Name, op.Type, op.Count, op.SelfMs*1000, op.TotalMs*1000, op.Share, xo.Type, xo.Occurrences, xo.SelfUs, xo.TotalUs, xo.HostShare)
		}
		shares += op.Share
	}
	if shares > 1+1e-9 {
		t.Errorf("the host's shares add up to %.4f", shares)
	}
	st := sum.Stats[0]
	if idle := (st.LineMs - st.OpMs) * 1000; st.Plane != "/host:CPU" || !within(idle, x.IdleUs["Host"]) {
		t.Errorf("host %+v: idle %.3f µs, xprof's IDLE %.3f µs", st, idle, x.IdleUs["Host"])
	}
	for _, marker := range []string{"KernelAndDeviceFunc::Run", "ExecutorState::Process", "bg_fn", "EagerExecute"} {
		if strings.Contains(table.String(), marker) {
			t.Errorf("the summary shows the runtime marker %s", marker)
		}
	}
	if !strings.Contains(table.String(), "MatMul") {
		t.Errorf("the summary names no MatMul")
	}
	return sum
}

// TestDevicePlaneSummaryAgreesWithXprof writes a trace with a GPU plane
// (no GPU needed): kernels on two streams that name their TensorFlow op
// with a tf_op stat, by reference and by value, as TensorFlow's GPU tracer
// does. xprof's framework_op_stats groups them by that op; so does
// loadprof's summary of the device plane, apart from the host's.
func TestDevicePlaneSummaryAgreesWithXprof(t *testing.T) {
	need(t)
	const ms = int64(1_000_000_000) // in ps
	kernel := func(md, startMs, durUs int64, st *tfproto.XStat) *tfproto.XEvent {
		return &tfproto.XEvent{MetadataId: md, Data: &tfproto.XEvent_OffsetPs{OffsetPs: startMs * ms}, DurationPs: durUs * 1_000_000, Stats: []*tfproto.XStat{st}}
	}
	matmul := &tfproto.XStat{MetadataId: 7, Value: &tfproto.XStat_RefValue{RefValue: 8}}
	relu := &tfproto.XStat{MetadataId: 7, Value: &tfproto.XStat_StrValue{StrValue: "model/dense/Relu:Relu"}}
	space := &tfproto.XSpace{Planes: []*tfproto.XPlane{
		{Id: 1, Name: "/host:CPU", EventMetadata: map[int64]*tfproto.XEventMetadata{1: {Id: 1, Name: "model/dense/MatMul:MatMul"}},
			Lines: []*tfproto.XLine{{Id: 1, TimestampNs: 0, Events: []*tfproto.XEvent{{MetadataId: 1, Data: &tfproto.XEvent_OffsetPs{OffsetPs: 0}, DurationPs: 2 * ms}}}}},
		{Id: 2, Name: "/device:GPU:0",
			StatMetadata:  map[int64]*tfproto.XStatMetadata{7: {Id: 7, Name: "tf_op"}, 8: {Id: 8, Name: "model/dense/MatMul:MatMul"}},
			EventMetadata: map[int64]*tfproto.XEventMetadata{1: {Id: 1, Name: "volta_sgemm_128x64_nn"}, 2: {Id: 2, Name: "relu_kernel"}},
			Lines: []*tfproto.XLine{
				{Id: 1, Name: "Stream #1(Compute)", TimestampNs: 1_000_000, Events: []*tfproto.XEvent{
					kernel(1, 0, 700, matmul), kernel(1, 1, 900, matmul), kernel(2, 2, 300, relu), kernel(1, 3, 650, matmul)}},
				{Id: 2, Name: "Stream #2(Compute)", TimestampNs: 1_000_000, Events: []*tfproto.XEvent{
					kernel(2, 5, 250, relu), kernel(2, 6, 200, relu)}},
			}},
	}}
	data, err := proto.Marshal(space)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gpu.xplane.pb")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := profile.SummarizeFiles([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	x := xprofFrameworkOpStats(t, path)
	var device []profile.Op
	for _, op := range sum.Ops {
		if op.Plane == "/device:GPU:0" {
			device = append(device, op)
		}
	}
	var n int
	for _, xo := range x.Ops {
		if xo.HostOrDevice != "Device" {
			continue
		}
		if n >= len(device) {
			t.Fatalf("xprof has more device ops than loadprof: %+v; loadprof %+v", x.Ops, device)
		}
		op := device[n]
		n++
		if op.Name != xo.Name || op.Type != xo.Type || op.Count != xo.Occurrences || math.Abs(op.SelfMs*1000-xo.SelfUs) > 0.01*xo.SelfUs ||
			math.Abs(op.Share-xo.DeviceShare) > 0.001 {
			t.Errorf("loadprof %+v; xprof %+v", op, xo)
		}
	}
	if n != 2 || len(device) != 2 || len(sum.Stats) != 2 || !sum.Stats[1].Device {
		t.Fatalf("device ops: loadprof %+v, xprof %+v; planes %+v", device, x.Ops, sum.Stats)
	}
}
