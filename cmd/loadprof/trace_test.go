package main

import (
	"strings"
	"testing"
)

// A real TensorFlow 2.21 trace: ops named and typed as xprof's
// framework_op_stats shows them, runtime markers left out, the shares of
// the host's ops adding up to 100%.
func TestTraceSummaryOfARealTensorFlowTrace(t *testing.T) {
	code, stdout, stderr := loadprof(t, "trace", "summary", "../../profile/testdata/tf221-dense-rest.xplane.pb", "--top", "3")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"/host:CPU, TensorFlow ops as xprof's framework_op_stats counts them: 10.263 ms busy in ops on 2 threads",
		"StatefulPartitionedCall/MatMul                   MatMul                   75       3.984       3.984   38.8%",
		"(3 of 9 ops; share is self time over the plane's time in ops",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("no %q in:\n%s", want, stdout)
		}
	}
	for _, marker := range []string{"KernelAndDeviceFunc::Run", "ExecutorState::Process", "StatefulPartitionedCall/Relu"} {
		if strings.Contains(stdout, marker) {
			t.Errorf("%s is shown:\n%s", marker, stdout)
		}
	}
}
