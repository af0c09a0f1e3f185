package sim

import (
	"context"
	"testing"
	"time"

	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestTraceEventsPadTheReturnedTraceWithAGPUPlane(t *testing.T) {
	const extra = 2*paddingEventsPerLine + 7
	s := start(t, Config{Profiler: ProfilerConfig{TraceEvents: extra}})
	cc, err := grpc.NewClient(s.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A call in the window, so that the sim's own plane has an event.
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _ = tfproto.NewPredictionServiceClient(cc).Predict(ctx, &tfproto.PredictRequest{
			ModelSpec: &tfproto.ModelSpec{Name: "test_model"},
			Inputs:    map[string]*tfproto.TensorProto{"x": floatTensor([]int64{1, 4}, 1, 2, 3, 4)}})
	}()
	resp, err := tfproto.NewProfilerServiceClient(cc).Profile(ctx, &tfproto.ProfileRequest{
		EmitXspace: true, SessionId: "s", HostName: "h", Opts: &tfproto.ProfileOptions{DurationMs: 300}})
	if err != nil {
		t.Fatal(err)
	}
	planes := map[string]*tfproto.XPlane{}
	for _, p := range resp.GetXspace().GetPlanes() {
		planes[p.GetName()] = p
	}
	if resp.GetEmptyTrace() || len(planes["/host:CPU"].GetLines()) == 0 {
		t.Fatalf("the sim's own plane is missing or empty: %v", resp.GetXspace())
	}
	gpu := planes["/device:GPU:0"]
	var events int
	var last int64
	for _, l := range gpu.GetLines() {
		events += len(l.GetEvents())
		for _, e := range l.GetEvents() {
			if gpu.GetEventMetadata()[e.GetMetadataId()].GetName() == "" || e.GetDurationPs() != 800_000 {
				t.Fatalf("event %v", e)
			}
			last = e.GetOffsetPs()
		}
	}
	if events != extra || len(gpu.GetLines()) != 3 || last != 6*1_000_000 {
		t.Fatalf("%d events on %d lines (last offset %d), want %d on 3", events, len(gpu.GetLines()), last, extra)
	}
}
