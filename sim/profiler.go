package sim

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// How the simulated ProfilerService hands back a trace.
const (
	ProfileReturnXSpace   = "xspace"   // in the response when asked (emit_xspace), else on the server's disk
	ProfileSaveOnServer   = "server"   // always on the server's disk, like servers that predate emit_xspace
	ProfileReturnToolData = "tooldata" // as tool_data, like much older servers
)

// ProfilerConfig configures the simulated ProfilerService.
type ProfilerConfig struct {
	Disabled bool   // no ProfilerService (TF Serving's --enable_profiler=false)
	Mode     string // ProfileReturnXSpace when empty
	// DiskRoot is prepended to the repository_root of requests when the
	// trace is saved "on the server's disk", so that a test can keep the
	// server's disk apart from the client's logdir.
	DiskRoot string
	// ToolDataNames overrides the file names of tool_data (hostile names
	// for tests).
	ToolDataNames []string
	// Hang makes Profile never answer (until the client gives up).
	Hang bool
	// Garbage makes Profile answer with bytes that are not a
	// ProfileResponse (a truncated message).
	Garbage bool
}

// rawReply is sent by the codec as it is: how the simulator answers with
// bytes that are not the message the client expects.
type rawReply []byte

// simCodec is the proto codec, but for rawReply.
type simCodec struct{ proto encoding.CodecV2 }

func (c simCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(rawReply); ok {
		return mem.BufferSlice{mem.SliceBuffer(r)}, nil
	}
	return c.proto.Marshal(v)
}

func (c simCodec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }
func (c simCodec) Name() string                                { return "proto" }

// garbageProfiler answers every ProfilerService call with a truncated
// message: a length-delimited field that claims more bytes than follow.
func garbageProfiler(_ any, stream grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(stream)
	if method != "/tensorflow.ProfilerService/Profile" {
		return status.Errorf(codes.Unimplemented, "unknown method %s", method)
	}
	var req tfproto.ProfileRequest
	if err := stream.RecvMsg(&req); err != nil {
		return err
	}
	return stream.SendMsg(rawReply{0x32, 0x7f, 0x0a, 0x03, 'a', 'b'})
}

// profiledCall is one predict call seen while a window was open.
type profiledCall struct {
	start, end time.Time
}

type profilerState struct {
	mu      sync.Mutex
	session string
	open    bool
	calls   []profiledCall
	stop    chan struct{}
}

// Profiling reports whether a profile window is open.
func (s *Server) Profiling() bool {
	s.prof.mu.Lock()
	defer s.prof.mu.Unlock()
	return s.prof.open
}

// noteCall records a predict call that arrived at start and will finish at
// end, if a window is open.
func (s *Server) noteCall(start, end time.Time) {
	s.prof.mu.Lock()
	if s.prof.open && len(s.prof.calls) < 1_000_000 {
		s.prof.calls = append(s.prof.calls, profiledCall{start, end})
	}
	s.prof.mu.Unlock()
}

type profilerService struct {
	tfproto.UnimplementedProfilerServiceServer
	s *Server
}

func (p *profilerService) Profile(ctx context.Context, req *tfproto.ProfileRequest) (*tfproto.ProfileResponse, error) {
	s := p.s
	cfg := s.cfg.Profiler
	if cfg.Hang {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	st := &s.prof
	st.mu.Lock()
	if st.open {
		st.mu.Unlock()
		return nil, status.Error(codes.Unavailable, "another profiling session is active")
	}
	st.open, st.session, st.calls, st.stop = true, req.GetSessionId(), nil, make(chan struct{})
	stop := st.stop
	st.mu.Unlock()

	// Like TSL's server: the window lasts opts.duration_ms.
	window := time.Duration(req.GetOpts().GetDurationMs()) * time.Millisecond
	timer := time.NewTimer(window)
	var cancelled bool
	select {
	case <-timer.C:
	case <-stop:
	case <-ctx.Done():
		cancelled = true
	}
	timer.Stop()
	st.mu.Lock()
	st.open = false
	calls := st.calls
	st.calls = nil
	st.mu.Unlock()
	if cancelled {
		return nil, status.Error(codes.Canceled, "the client cancelled the profile; the data is dropped")
	}
	space := s.traceOf(calls, req.GetHostName())
	resp := &tfproto.ProfileResponse{EmptyTrace: len(calls) == 0}
	mode := cfg.Mode
	if mode == "" {
		mode = ProfileReturnXSpace
	}
	switch {
	case mode == ProfileReturnXSpace && req.GetEmitXspace():
		resp.Xspace = space
	case mode == ProfileReturnToolData:
		data, err := proto.Marshal(space)
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		names := cfg.ToolDataNames
		if len(names) == 0 {
			names = []string{req.GetHostName() + ".xplane.pb"}
		}
		for _, n := range names {
			resp.ToolData = append(resp.ToolData, &tfproto.ProfileToolData{Name: n, Data: data})
		}
	default:
		if len(calls) > 0 {
			data, err := proto.Marshal(space)
			if err != nil {
				return nil, status.Error(codes.Internal, err.Error())
			}
			dir := filepath.Join(cfg.DiskRoot, filepath.FromSlash(req.GetRepositoryRoot()), req.GetSessionId())
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, status.Error(codes.Internal, err.Error())
			}
			if err := os.WriteFile(filepath.Join(dir, req.GetHostName()+".xplane.pb"), data, 0o644); err != nil {
				return nil, status.Error(codes.Internal, err.Error())
			}
		}
	}
	return resp, nil
}

func (p *profilerService) Terminate(_ context.Context, req *tfproto.TerminateRequest) (*tfproto.TerminateResponse, error) {
	st := &p.s.prof
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.open && st.session == req.GetSessionId() && st.stop != nil {
		close(st.stop)
		st.stop = nil
	}
	return &tfproto.TerminateResponse{}, nil
}

// simulatedOps split a predict call's service time the way a small dense
// model's trace would: each op takes a fixed share, the rest is runtime
// overhead in the enclosing call.
var simulatedOps = []struct {
	name  string
	share float64
}{
	{"serving_default/dense/MatMul:MatMul", 0.40},
	{"serving_default/dense/BiasAdd:BiasAdd", 0.10},
	{"serving_default/dense/Relu:Relu", 0.15},
	{"serving_default/output/MatMul:MatMul", 0.20},
}

// traceOf builds the /host:CPU plane of the calls: one "Predict" event per
// call with the simulated ops nested inside it, calls spread over lines
// (threads) so that events on a line never overlap.
func (s *Server) traceOf(calls []profiledCall, host string) *tfproto.XSpace {
	plane := &tfproto.XPlane{Id: 1, Name: "/host:CPU", EventMetadata: map[int64]*tfproto.XEventMetadata{}}
	ids := map[string]int64{}
	meta := func(name string) int64 {
		if id, ok := ids[name]; ok {
			return id
		}
		id := int64(len(ids) + 1)
		ids[name] = id
		plane.EventMetadata[id] = &tfproto.XEventMetadata{Id: id, Name: name}
		return id
	}
	var base time.Time
	for _, c := range calls {
		if base.IsZero() || c.start.Before(base) {
			base = c.start
		}
	}
	var lanes profile.Lanes
	for _, c := range calls {
		slot, added := lanes.Place(c.start, c.end)
		if added {
			plane.Lines = append(plane.Lines, &tfproto.XLine{Id: int64(slot + 1), Name: "tf_serving_worker_" + strconv.Itoa(slot+1), TimestampNs: base.UnixNano()})
		}
		line := plane.Lines[slot]
		offset := c.start.Sub(base).Nanoseconds() * 1000
		dur := c.end.Sub(c.start).Nanoseconds() * 1000
		line.Events = append(line.Events, &tfproto.XEvent{MetadataId: meta("Predict"), Data: &tfproto.XEvent_OffsetPs{OffsetPs: offset}, DurationPs: dur})
		at := offset + dur/20 // ops start after 5% of the call
		for _, op := range simulatedOps {
			d := int64(float64(dur) * op.share)
			line.Events = append(line.Events, &tfproto.XEvent{MetadataId: meta(op.name), Data: &tfproto.XEvent_OffsetPs{OffsetPs: at}, DurationPs: d})
			at += d
		}
	}
	return &tfproto.XSpace{Planes: []*tfproto.XPlane{plane}, Hostnames: []string{host}}
}
