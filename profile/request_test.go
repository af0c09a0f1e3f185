package profile

import (
	"slices"
	"testing"
	"time"
)

// The request loadprof builds, against what TensorFlow 2.21's client sends
// (conformance/profilerequest_test.go records both from the real client;
// this checks the same fields without Python).
func TestRequestIsTensorFlowClients(t *testing.T) {
	opts := Options{Duration: 1500 * time.Millisecond, LogDir: "/local/logs", ServerLogDir: "/srv/logs", Run: "2026_01_02_03_04_05"}
	opts.defaults("10.0.0.7:8500")
	req := newRequest(opts)
	o := req.GetOpts()
	switch {
	case req.GetHostName() != "10.0.0.7:8500":
		t.Errorf("host_name %q: TF's client sends the service address as given", req.GetHostName())
	case !slices.Equal(req.GetTools(), []string{"trace_viewer", "op_profile", "input_pipeline", "kernel_stats", "memory_viewer", "memory_profile", "overview_page", "pod_viewer", "tensorflow_stats", "xplane.pb"}):
		t.Errorf("tools %v", req.GetTools())
	case req.GetDurationMs() != 1500 || o.GetDurationMs() != 1500 || req.GetMaxEvents() != 1_000_000:
		t.Errorf("durations %d %d, max_events %d", req.GetDurationMs(), o.GetDurationMs(), req.GetMaxEvents())
	case !o.GetEnableHloProto() || !o.GetIncludeDatasetOps():
		t.Errorf("enable_hlo_proto %v, include_dataset_ops %v: TF's client sets both", o.GetEnableHloProto(), o.GetIncludeDatasetOps())
	case o.GetRepositoryPath() != "/srv/logs" || req.GetRepositoryRoot() != "/srv/logs/plugins/profile":
		t.Errorf("repository_path %q, repository_root %q: the logdir as the server sees it", o.GetRepositoryPath(), req.GetRepositoryRoot())
	case o.GetVersion() != 1 || o.GetHostTracerLevel() != 2 || o.GetDeviceTracerLevel() != 1 || o.GetPythonTracerLevel() != 0:
		t.Errorf("version %d, tracer levels %d %d %d", o.GetVersion(), o.GetHostTracerLevel(), o.GetDeviceTracerLevel(), o.GetPythonTracerLevel())
	case req.GetSessionId() != opts.Run || o.GetSessionId() != "":
		t.Errorf("session_id %q, opts.session_id %q: TF's client sets the first only", req.GetSessionId(), o.GetSessionId())
	// The two differences on purpose (newRequest says why).
	case !req.GetEmitXspace() || o.GetStartTimestampNs() != 0:
		t.Errorf("emit_xspace %v, start_timestamp_ns %d", req.GetEmitXspace(), o.GetStartTimestampNs())
	}
}

func TestTraceFileNameIsTheServersName(t *testing.T) {
	for host, want := range map[string]string{
		"127.0.0.1:8500": "127.0.0.1_8500.xplane.pb", // as TF's SaveXSpace names it
		"[::1]:8500":     "[__1]_8500.xplane.pb",
		"a/b":            "a_b.xplane.pb",
	} {
		if got := TraceFileName(host); got != want {
			t.Errorf("TraceFileName(%q) = %q, want %q", host, got, want)
		}
	}
}
