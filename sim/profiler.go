package sim

import (
	"context"
	"os"
	"path/filepath"
	"slices"
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
	"google.golang.org/protobuf/encoding/protowire"
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
	// TraceEvents adds this many events to a trace returned in the
	// response (emit_xspace), on a "/device:GPU:0" plane of their own: a
	// big trace, to test how the client copes with one. All lines repeat
	// one encoded block of events, so even 10 M events (about 170 MB on the
	// wire) cost the simulator little memory and no garbage collection.
	TraceEvents int
	// ClockOffset is added to the server's clock in its traces: the
	// simulator's clock runs this far ahead of the client's (behind when
	// negative), like a server on another machine.
	ClockOffset time.Duration
	// RequestEvent names the request-level event of each call in the
	// trace; "Predict" when empty.
	RequestEvent string
	// AnswerDelay holds the answer this long after the window ends, as a
	// big trace over a slow tunnel takes to arrive.
	AnswerDelay time.Duration
}

// rawReply is sent by the codec as it is: how the simulator answers with
// bytes that are not the message the client expects.
type rawReply []byte

// simCodec is the proto codec, but for rawReply.
type simCodec struct{ proto encoding.CodecV2 }

func (c simCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch r := v.(type) {
	case rawReply:
		return mem.BufferSlice{mem.SliceBuffer(r)}, nil
	case paddedReply:
		return r.marshal()
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

// The stats of TensorFlow's "Task Environment" plane that the simulator
// writes: the window's start and stop, ns since the epoch.
const (
	statProfileStart = 1
	statProfileStop  = 2
)

// Profiling reports whether a profile window is open.
func (s *Server) Profiling() bool {
	s.prof.mu.Lock()
	defer s.prof.mu.Unlock()
	return s.prof.open
}

// noteCall records a predict call that arrived at start and finished at
// end, if a window is still open: like TensorFlow's profiler, which
// records an event when it ends, a call that outlives the window is not
// in its trace.
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
	// Calls are noted from here on: none starts before the window.
	started := time.Now()
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
	space := s.traceOf(calls, req.GetHostName(), started, time.Now())
	if d := cfg.AnswerDelay; d > 0 {
		select { // the trace on its way over a slow link
		case <-time.After(d):
		case <-ctx.Done():
			return nil, status.Error(codes.Canceled, "the client cancelled the profile; the data is dropped")
		}
	}
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
			names = []string{profile.TraceFileName(req.GetHostName())}
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
			if err := os.WriteFile(filepath.Join(dir, profile.TraceFileName(req.GetHostName())), data, 0o644); err != nil { // named as TF's SaveXSpace names it
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

// traceOf builds the trace of a window from start to stop the way
// TensorFlow's profiler does: a "Task Environment" plane with the window's
// start and stop on the server's clock (ProfilerConfig.ClockOffset ahead of
// the real one), and the /host:CPU plane of the calls, its lines counting
// from the start: one request event per call ("Predict") with the
// simulated ops nested inside it, calls spread over lines (threads) so
// that events on a line never overlap.
func (s *Server) traceOf(calls []profiledCall, host string, start, stop time.Time) *tfproto.XSpace {
	clock := s.cfg.Profiler.ClockOffset
	env := &tfproto.XPlane{
		Name: profile.TaskEnvironmentPlane,
		StatMetadata: map[int64]*tfproto.XStatMetadata{
			statProfileStart: {Id: statProfileStart, Name: profile.ProfileStartStat},
			statProfileStop:  {Id: statProfileStop, Name: profile.ProfileStopStat},
		},
		Stats: []*tfproto.XStat{
			{MetadataId: statProfileStart, Value: &tfproto.XStat_Uint64Value{Uint64Value: uint64(start.Add(clock).UnixNano())}},
			{MetadataId: statProfileStop, Value: &tfproto.XStat_Uint64Value{Uint64Value: uint64(stop.Add(clock).UnixNano())}},
		},
	}
	request := s.cfg.Profiler.RequestEvent
	if request == "" {
		request = "Predict"
	}
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
	var lanes profile.Lanes
	for _, c := range calls {
		if c.start.Before(start) {
			continue // begun before the window: TensorFlow does not record it
		}
		slot, added := lanes.Place(c.start, c.end)
		if added {
			plane.Lines = append(plane.Lines, &tfproto.XLine{Id: int64(slot + 1), Name: "tf_serving_worker_" + strconv.Itoa(slot+1)})
		}
		line := plane.Lines[slot]
		offset := c.start.Sub(start).Nanoseconds() * 1000
		dur := c.end.Sub(c.start).Nanoseconds() * 1000
		line.Events = append(line.Events, &tfproto.XEvent{MetadataId: meta(request), Data: &tfproto.XEvent_OffsetPs{OffsetPs: offset}, DurationPs: dur})
		at := offset + dur/20 // ops start after 5% of the call
		for _, op := range simulatedOps {
			d := int64(float64(dur) * op.share)
			line.Events = append(line.Events, &tfproto.XEvent{MetadataId: meta(op.name), Data: &tfproto.XEvent_OffsetPs{OffsetPs: at}, DurationPs: d})
			at += d
		}
	}
	return &tfproto.XSpace{Planes: []*tfproto.XPlane{plane, env}, Hostnames: []string{host}}
}

// paddedReply is a ProfileResponse whose XSpace has more planes, already
// encoded (ProfilerConfig.TraceEvents).
type paddedReply struct {
	resp   *tfproto.ProfileResponse
	planes mem.BufferSlice // XSpace.planes fields, shared by every reply
}

func (r paddedReply) marshal() (mem.BufferSlice, error) {
	space := r.resp.GetXspace()
	rest := proto.Clone(r.resp).(*tfproto.ProfileResponse)
	rest.Xspace = nil
	head, err := proto.Marshal(rest)
	if err != nil {
		return nil, err
	}
	own, err := proto.Marshal(space)
	if err != nil {
		return nil, err
	}
	// Repeated fields of a message may come in several pieces: the
	// response's own planes, then the padding planes.
	head = protowire.AppendTag(head, xspaceField, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(own)+r.planes.Len()))
	head = append(head, own...)
	return append(mem.BufferSlice{mem.SliceBuffer(head)}, r.planes...), nil
}

// xspaceField is ProfileResponse.xspace.
const xspaceField = 8

// paddingEventsPerLine is how many events each line of the padding plane
// holds (the last one fewer).
const paddingEventsPerLine = 10_000

// paddingPlane encodes a "/device:GPU:0" plane of n events as XSpace.planes
// (field 1): lines of paddingEventsPerLine back-to-back kernels of 0.8 us
// every 1 us, three kernel names taking turns. The lines share the encoded
// events, so the result holds about one line's worth of memory.
func paddingPlane(n int) mem.BufferSlice {
	kernels := []string{"sim_kernel_gemm", "sim_kernel_bias_relu", "sim_kernel_reduce"}
	events := func(count int) []byte {
		var b, ev []byte
		for i := 0; i < count; i++ {
			ev = ev[:0]
			ev = protowire.AppendTag(ev, 1, protowire.VarintType) // metadata_id
			ev = protowire.AppendVarint(ev, uint64(1+i%len(kernels)))
			ev = protowire.AppendTag(ev, 2, protowire.VarintType) // offset_ps
			ev = protowire.AppendVarint(ev, uint64(i)*1_000_000)
			ev = protowire.AppendTag(ev, 3, protowire.VarintType) // duration_ps
			ev = protowire.AppendVarint(ev, 800_000)
			b = protowire.AppendTag(b, 4, protowire.BytesType) // XLine.events
			b = protowire.AppendBytes(b, ev)
		}
		return b
	}
	full := events(min(n, paddingEventsPerLine))
	var lines mem.BufferSlice
	var linesLen int
	for id := 1; n > 0; id++ {
		block := full
		if n < paddingEventsPerLine {
			block = events(n)
		}
		n -= min(n, paddingEventsPerLine)
		var hdr []byte
		hdr = protowire.AppendTag(hdr, 1, protowire.VarintType) // XLine.id
		hdr = protowire.AppendVarint(hdr, uint64(id))
		hdr = protowire.AppendTag(hdr, 2, protowire.BytesType) // XLine.name
		hdr = protowire.AppendString(hdr, "Stream #"+strconv.Itoa(id))
		// XLine.timestamp_ns is 0: the lines count from the window's start.
		line := protowire.AppendTag(nil, 3, protowire.BytesType) // XPlane.lines
		line = protowire.AppendVarint(line, uint64(len(hdr)+len(block)))
		line = append(line, hdr...)
		lines = append(lines, mem.SliceBuffer(line), mem.SliceBuffer(block))
		linesLen += len(line) + len(block)
	}
	var head, tail []byte
	head = protowire.AppendTag(head, 1, protowire.VarintType) // XPlane.id
	head = protowire.AppendVarint(head, 2)
	head = protowire.AppendTag(head, 2, protowire.BytesType) // XPlane.name
	head = protowire.AppendString(head, "/device:GPU:0")
	for i, k := range kernels {
		md, err := proto.Marshal(&tfproto.XEventMetadata{Id: int64(i + 1), Name: k})
		if err != nil {
			panic(err) // a plain message always marshals
		}
		var entry []byte
		entry = protowire.AppendTag(entry, 1, protowire.VarintType) // map key
		entry = protowire.AppendVarint(entry, uint64(i+1))
		entry = protowire.AppendTag(entry, 2, protowire.BytesType) // map value
		entry = protowire.AppendBytes(entry, md)
		tail = protowire.AppendTag(tail, 4, protowire.BytesType) // XPlane.event_metadata
		tail = protowire.AppendBytes(tail, entry)
	}
	plane := protowire.AppendTag(nil, 1, protowire.BytesType) // XSpace.planes
	plane = protowire.AppendVarint(plane, uint64(len(head)+linesLen+len(tail)))
	plane = append(plane, head...)
	out := mem.BufferSlice{mem.SliceBuffer(plane)}
	out = append(out, lines...)
	return append(out, mem.SliceBuffer(tail))
}

// paddedProfilerService is the ProfilerService whose Profile replies carry
// ProfilerConfig.TraceEvents more events.
func (s *Server) paddedProfilerService() *grpc.ServiceDesc {
	desc := tfproto.ProfilerService_ServiceDesc
	desc.Methods = slices.Clone(desc.Methods)
	var padding mem.BufferSlice
	var once sync.Once
	for i, m := range desc.Methods {
		if m.MethodName != "Profile" {
			continue
		}
		desc.Methods[i].Handler = func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var req tfproto.ProfileRequest
			if err := dec(&req); err != nil {
				return nil, err
			}
			resp, err := srv.(*profilerService).Profile(ctx, &req)
			if err != nil || resp.GetXspace() == nil {
				return resp, err
			}
			once.Do(func() { padding = paddingPlane(s.cfg.Profiler.TraceEvents) })
			return paddedReply{resp: resp, planes: padding}, nil
		}
	}
	return &desc
}
