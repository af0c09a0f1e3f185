package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loadprof/loadprof/profile"
	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// recordedCall is one call a recordingServer received, as it came on the
// wire.
type recordedCall struct {
	method string
	body   []byte
	at     time.Time
}

// recordingServer is a gRPC server on loopback that knows no service: it
// keeps the raw request of every call and answers the ProfilerService's
// Profile with a small valid trace, so that a client sees a successful
// capture and makes exactly one call.
type recordingServer struct {
	addr  string
	mu    sync.Mutex
	calls []recordedCall
}

// rawCodec hands a request to the handler as its bytes and sends replies
// as protobuf. Its name is "proto" so that it serves every client's
// ordinary "application/grpc" calls.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot send a %T", v)
	}
	return proto.Marshal(m)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot receive into a %T", v)
	}
	*b = append([]byte(nil), data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

func startRecordingServer(t *testing.T) *recordingServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs := &recordingServer{addr: lis.Addr().String()}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(rs.handle))
	go srv.Serve(lis)
	t.Cleanup(func() {
		stopped := make(chan struct{})
		go func() { srv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			srv.Stop()
		}
	})
	return rs
}

func (rs *recordingServer) handle(_ any, stream grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(stream)
	var body []byte
	if err := stream.RecvMsg(&body); err != nil {
		return err
	}
	rs.mu.Lock()
	rs.calls = append(rs.calls, recordedCall{method: method, body: body, at: time.Now()})
	rs.mu.Unlock()
	if method != tfproto.ProfilerService_Profile_FullMethodName {
		return status.Errorf(codes.Unimplemented, "recording server: %s is not served", method)
	}
	return stream.SendMsg(&tfproto.ProfileResponse{Xspace: &tfproto.XSpace{Planes: []*tfproto.XPlane{{
		Id: 1, Name: "/host:CPU",
		Lines:         []*tfproto.XLine{{Id: 1, Name: "recording", Events: []*tfproto.XEvent{{MetadataId: 1, Data: &tfproto.XEvent_OffsetPs{OffsetPs: 0}, DurationPs: 1000}}}},
		EventMetadata: map[int64]*tfproto.XEventMetadata{1: {Id: 1, Name: "recorded"}},
	}}}})
}

// takeCalls returns the calls received so far and forgets them.
func (rs *recordingServer) takeCalls() []recordedCall {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	calls := rs.calls
	rs.calls = nil
	return calls
}

// profileRequestOf finds the one Profile call among calls and decodes it.
func profileRequestOf(t *testing.T, who string, calls []recordedCall) (*tfproto.ProfileRequest, recordedCall) {
	t.Helper()
	var methods []string
	var found []recordedCall
	for _, c := range calls {
		methods = append(methods, c.method)
		if c.method == tfproto.ProfilerService_Profile_FullMethodName {
			found = append(found, c)
		}
	}
	if len(found) != 1 || len(calls) != 1 {
		t.Fatalf("%s made the calls %v; want one Profile call", who, methods)
	}
	var req tfproto.ProfileRequest
	if err := proto.Unmarshal(found[0].body, &req); err != nil {
		t.Fatalf("%s's ProfileRequest does not decode: %v", who, err)
	}
	if unknown := unknownFields(req.ProtoReflect(), ""); len(unknown) > 0 {
		t.Fatalf("%s's ProfileRequest sets fields tfproto does not know (add them to proto/ and run scripts/genproto.sh): %v", who, unknown)
	}
	return &req, found[0]
}

// unknownFields lists the messages, by path, that carry fields their
// descriptor does not have.
func unknownFields(m protoreflect.Message, path string) []string {
	var out []string
	if len(m.GetUnknown()) > 0 {
		out = append(out, fmt.Sprintf("%q: % x", path, m.GetUnknown()))
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := join(path, string(fd.Name()))
		switch {
		case fd.IsMap() && fd.MapValue().Kind() == protoreflect.MessageKind:
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				out = append(out, unknownFields(mv.Message(), fmt.Sprintf("%s[%v]", name, k.Interface()))...)
				return true
			})
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			for i := 0; i < v.List().Len(); i++ {
				out = append(out, unknownFields(v.List().Get(i).Message(), fmt.Sprintf("%s[%d]", name, i))...)
			}
		case !fd.IsMap() && !fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			out = append(out, unknownFields(v.Message(), name)...)
		}
		return true
	})
	return out
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// requestFields flattens a message into path -> value for every field that
// is set, down through nested messages, lists and maps, so that two
// requests compare field by field. Strings have the run's own names
// (logdir, session id) replaced by LOGDIR and RUN: they differ by
// construction, what matters is where they appear.
func requestFields(m protoreflect.Message, path string, rename *strings.Replacer, out map[string]string) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := join(path, string(fd.Name()))
		switch {
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				key := fmt.Sprintf("%s[%v]", name, k.Interface())
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					if len(fieldsOf(mv.Message(), rename)) == 0 {
						out[key] = "{}"
					}
					requestFields(mv.Message(), key, rename, out)
				} else {
					out[key] = scalar(mv, rename)
				}
				return true
			})
		case fd.IsList():
			var items []string
			for i := 0; i < v.List().Len(); i++ {
				if fd.Kind() == protoreflect.MessageKind {
					requestFields(v.List().Get(i).Message(), fmt.Sprintf("%s[%d]", name, i), rename, out)
					continue
				}
				items = append(items, scalar(v.List().Get(i), rename))
			}
			if fd.Kind() != protoreflect.MessageKind {
				out[name] = "[" + strings.Join(items, " ") + "]"
			}
		case fd.Kind() == protoreflect.MessageKind:
			if len(fieldsOf(v.Message(), rename)) == 0 {
				out[name] = "{}" // present, with nothing set in it
			}
			requestFields(v.Message(), name, rename, out)
		default:
			out[name] = scalar(v, rename)
		}
		return true
	})
}

func fieldsOf(m protoreflect.Message, rename *strings.Replacer) map[string]string {
	out := map[string]string{}
	requestFields(m, "", rename, out)
	return out
}

func scalar(v protoreflect.Value, rename *strings.Replacer) string {
	if s, ok := v.Interface().(string); ok {
		return fmt.Sprintf("%q", rename.Replace(s))
	}
	return fmt.Sprint(v.Interface())
}

// TestProfileRequestMatchesTensorFlowsClient records the ProfileRequest
// that TensorFlow 2.21's own client (tf.profiler.experimental.client.trace,
// what TensorBoard's CAPTURE PROFILE and TF Serving's profiler_client run)
// sends, and loadprof's for the same window, on one recording server, and
// compares them field by field. Every difference must be listed below with
// its reason.
func TestProfileRequestMatchesTensorFlowsClient(t *testing.T) {
	need(t)
	rs := startRecordingServer(t)
	const durationMs = 1000

	tfLogdir := t.TempDir()
	tfStart := time.Now()
	cmd := exec.Command(python, "tf_trace.py", rs.addr, tfLogdir, fmt.Sprint(durationMs))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tf_trace.py: %v\n%s", err, out)
	}
	theirs, tfCall := profileRequestOf(t, "TensorFlow's client", rs.takeCalls())

	ourLogdir := t.TempDir()
	cc, err := grpc.NewClient(rs.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ourStart := time.Now()
	if _, err := profile.Capture(context.Background(), cc, rs.addr, profile.Options{Duration: durationMs * time.Millisecond, LogDir: ourLogdir}); err != nil {
		t.Fatal(err)
	}
	ours, ourCall := profileRequestOf(t, "loadprof", rs.takeCalls())

	flatten := func(req *tfproto.ProfileRequest, logdir string) map[string]string {
		out := map[string]string{}
		// The longest names first: the run's directory before the logdir.
		rename := strings.NewReplacer(filepath.ToSlash(logdir), "LOGDIR", req.GetSessionId(), "RUN")
		requestFields(req.ProtoReflect(), "", rename, out)
		return out
	}
	tf, lp := flatten(theirs, tfLogdir), flatten(ours, ourLogdir)
	t.Logf("TensorFlow's client: %v", tf)
	t.Logf("loadprof: %v", lp)

	// Differences on purpose, each with its reason (profile/capture.go
	// says the same where the request is built).
	intended := map[string]string{
		"emit_xspace": "TF's client leaves it unset and has the server save the trace on its own disk; " +
			"loadprof asks for the XSpace in the response so that the trace comes back over the one gRPC port " +
			"(an SSH tunnel, a server on another machine)",
		"opts.start_timestamp_ns": "the server sleeps until this time by its own clock before it starts the window; " +
			"a client clock ahead of the server's would delay the window by the skew and move it off the load it should " +
			"record, so loadprof starts it on arrival (0)",
	}
	// The run's name, a time: both clients must set it, to values checked
	// below.
	perRun := map[string]bool{"session_id": true}

	paths := map[string]bool{}
	for p := range tf {
		paths[p] = true
	}
	for p := range lp {
		paths[p] = true
	}
	var sorted []string
	for p := range paths {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)
	seenIntended := map[string]bool{}
	for _, p := range sorted {
		a, inTF := tf[p]
		b, inLP := lp[p]
		switch {
		case intended[p] != "":
			seenIntended[p] = true
			if a == b && inTF == inLP {
				t.Errorf("%s: listed as an intended difference, but both clients send %s", p, a)
			}
		case perRun[p]:
			if !inTF || !inLP {
				t.Errorf("%s: TensorFlow's client sends %s (%v), loadprof %s (%v); both must set it", p, a, inTF, b, inLP)
			}
		case !inTF:
			t.Errorf("%s: loadprof sends %s, TensorFlow's client leaves it unset", p, b)
		case !inLP:
			t.Errorf("%s: TensorFlow's client sends %s, loadprof leaves it unset", p, a)
		case a != b:
			t.Errorf("%s: TensorFlow's client sends %s, loadprof %s", p, a, b)
		}
	}
	for p := range intended {
		if !seenIntended[p] {
			t.Errorf("%s: listed as an intended difference, but neither client sets it", p)
		}
	}
	// What the differences are in fact.
	if theirs.GetEmitXspace() || !ours.GetEmitXspace() {
		t.Errorf("emit_xspace: TensorFlow's client %v, loadprof %v", theirs.GetEmitXspace(), ours.GetEmitXspace())
	}
	if ts := theirs.GetOpts().GetStartTimestampNs(); ts < uint64(tfStart.UnixNano()) || ts > uint64(tfCall.at.UnixNano()) {
		t.Errorf("TensorFlow's start_timestamp_ns %d is not the time of its call (%d..%d)", ts, tfStart.UnixNano(), tfCall.at.UnixNano())
	}
	if ours.GetOpts().GetStartTimestampNs() != 0 {
		t.Errorf("loadprof sends start_timestamp_ns %d", ours.GetOpts().GetStartTimestampNs())
	}
	// Both name the run as TensorBoard does, by the time it started.
	for _, c := range []struct {
		who   string
		req   *tfproto.ProfileRequest
		start time.Time
		call  recordedCall
	}{{"TensorFlow's client", theirs, tfStart, tfCall}, {"loadprof", ours, ourStart, ourCall}} {
		id := c.req.GetSessionId()
		first, last := profile.RunName(c.start.Add(-time.Second)), profile.RunName(c.call.at)
		if id < first || id > last+"~" { // "~" after the "_2" of a second run in the same second
			t.Errorf("%s: session_id %q; want a run name of the time of the call (%s..%s)", c.who, id, first, last)
		}
	}
}

// TestProfilerProtosMatchTensorFlows checks tfproto's profiler messages
// against the descriptors TensorFlow 2.21's python package compiled from
// the official profiler_options.proto and xplane.proto: every message
// tfproto has, it has with all of TensorFlow's fields, by the same names,
// numbers, types and cardinality. (profiler_service.proto is not in TF's
// python package; TestProfileRequestMatchesTensorFlowsClient finds any
// field of its ProfileRequest that tfproto does not know.)
func TestProfilerProtosMatchTensorFlows(t *testing.T) {
	need(t)
	out, err := exec.Command(python, "proto_fields.py").Output()
	if err != nil {
		t.Fatalf("proto_fields.py: %v", err)
	}
	var theirs map[string][][]any
	if err := json.Unmarshal(out, &theirs); err != nil {
		t.Fatalf("proto_fields.py: %v", err)
	}
	compared := 0
	for name, fields := range theirs {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			continue // a message loadprof has no use for
		}
		md := d.(protoreflect.MessageDescriptor)
		compared++
		var want, got []string
		for _, f := range fields {
			want = append(want, fmt.Sprintf("%v=%v kind %v card %v", f[0], f[1], f[2], f[3]))
		}
		for i := 0; i < md.Fields().Len(); i++ {
			f := md.Fields().Get(i)
			got = append(got, fmt.Sprintf("%s=%d kind %d card %d", f.Name(), f.Number(), f.Kind(), f.Cardinality()))
		}
		sort.Strings(want)
		sort.Strings(got)
		if strings.Join(want, "; ") != strings.Join(got, "; ") {
			t.Errorf("%s:\n TensorFlow %v\n tfproto    %v", name, want, got)
		}
	}
	t.Logf("compared %d messages", compared)
	if compared < 2 {
		t.Fatalf("only %d of TensorFlow's messages are in tfproto: %v", compared, out)
	}
}
