package profile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/loadprof/loadprof/internal/outfile"
	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultDuration is the profile window when none is given, as
// TensorBoard's CAPTURE dialog suggests.
const DefaultDuration = 4 * time.Second

// Options describe one capture. The zero value of each field has a useful
// default.
type Options struct {
	Duration          time.Duration // window length; 4s when 0
	LogDir            string        // TensorBoard logdir (local); the run goes under plugins/profile
	ServerLogDir      string        // the logdir as the server sees it, when it saves the trace itself; LogDir when empty
	HostName          string        // host_name in the request; the address as given when empty (the trace file's name is TraceFileName of it)
	Run               string        // run (session) name; RunName(now) when empty
	HostTracerLevel   uint32        // 0-3; 2 when 0
	DeviceTracerLevel uint32        // 0-1; 1 when 0
	PythonTracerLevel uint32
	NoDeviceTracer    bool          // DeviceTracerLevel 0
	Attempts          int           // tries while the server reports an empty trace; 3 when 0
	Slack             time.Duration // RPC deadline beyond the window, for collection; 60s when 0
	Grace             time.Duration // once ctx is cancelled, how long to wait for the trace; 2s when 0
	MaxEvents         uint64        // 1e6 when 0
	MaxBytes          int           // largest response accepted (the trace, or all tool data); DefaultMaxBytes when 0
	Tools             []string      // tools asked of servers that return tool_data; TensorFlowTools when empty
}

func (o *Options) defaults(addr string) {
	if o.Duration <= 0 {
		o.Duration = DefaultDuration
	}
	if o.HostName == "" {
		o.HostName = addr // what TensorFlow's client sends: the service address
	}
	if o.Run == "" {
		o.Run = RunName(time.Now())
	}
	if o.HostTracerLevel == 0 {
		o.HostTracerLevel = 2
	}
	if o.DeviceTracerLevel == 0 && !o.NoDeviceTracer {
		o.DeviceTracerLevel = 1
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.Slack <= 0 {
		o.Slack = 60 * time.Second
	}
	if o.Grace <= 0 {
		o.Grace = 2 * time.Second
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxEvents == 0 {
		o.MaxEvents = 1_000_000
	}
	if len(o.Tools) == 0 {
		o.Tools = TensorFlowTools
	}
	if o.ServerLogDir == "" {
		o.ServerLogDir = o.LogDir
	}
}

// TensorFlowTools are the tools TensorFlow 2.21's client asks for, in its
// order. Only servers that answer with tool data (no emit_xspace) look at
// them; "xplane.pb" among them is what makes such a server return the
// XSpace itself, which the trace viewer and loadprof's summary read.
var TensorFlowTools = []string{"trace_viewer", "op_profile", "input_pipeline", "kernel_stats", "memory_viewer",
	"memory_profile", "overview_page", "pod_viewer", "tensorflow_stats", "xplane.pb"}

// TraceFileName is the name of the XSpace file of host: the host name with
// ':' as '_', as TensorFlow's servers name the file they save (SaveXSpace),
// so that a trace has the same name whether loadprof or the server wrote
// it ('/' too, so that a name is never a path).
func TraceFileName(host string) string {
	return strings.NewReplacer(":", "_", "/", "_").Replace(host) + ".xplane.pb"
}

// DefaultMaxBytes is the largest response a capture accepts by default:
// 1 GiB, several minutes of a busy server's host and device tracers.
const DefaultMaxBytes = 1 << 30

// Where a trace ended up.
const (
	SavedLocal  = "local"  // loadprof wrote it under LogDir on this machine
	SavedServer = "server" // the server saved it on its own disk
	SavedNone   = "none"   // nothing was captured
)

// Result says what a capture produced and where it is.
type Result struct {
	Address    string    `json:"address"`
	Run        string    `json:"run"`
	SessionID  string    `json:"session_id"`
	LogDir     string    `json:"logdir"`
	Saved      string    `json:"saved"` // SavedLocal, SavedServer or SavedNone
	Files      []string  `json:"files,omitempty"`
	ServerPath string    `json:"server_path,omitempty"`
	EmptyTrace bool      `json:"empty_trace"`
	Attempts   int       `json:"attempts"`
	Terminated bool      `json:"terminated,omitempty"`  // ended early on request
	TraceBytes int64     `json:"trace_bytes,omitempty"` // size of the XSpace the server returned
	NotWritten []string  `json:"not_written,omitempty"` // trace files captured but not written (see the error)
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`
}

// TraceFiles are the XSpace files of the server's trace written on this
// machine (what the trace viewer opens), for a summary.
func (r *Result) TraceFiles() []string {
	var out []string
	for _, f := range r.Files {
		if strings.HasSuffix(f, ".xplane.pb") {
			out = append(out, f)
		}
	}
	return out
}

// Error is a capture that failed, with what the user can do about it.
type Error struct {
	Addr string
	Msg  string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("profile %s: %s", e.Addr, e.Msg) }
func (e *Error) Unwrap() error { return e.Err }

// Capture opens a profile window of opts.Duration on the ProfilerService at
// addr over conn and stores what comes back. Cancelling ctx ends the
// window early through Terminate, so the data collected so far is kept.
func Capture(ctx context.Context, conn *grpc.ClientConn, addr string, opts Options) (*Result, error) {
	opts.defaults(addr)
	// A unique run: a capture never lands in another's. When the logdir
	// cannot take it, the capture goes on (the server may save the trace
	// itself, and the summary needs no file); the write says what failed.
	reserved := false
	if name, err := ReserveRun(opts.LogDir, opts.Run); err == nil {
		opts.Run, reserved = name, true
	}
	res := &Result{Address: addr, Run: opts.Run, SessionID: opts.Run, LogDir: opts.LogDir, Saved: SavedNone, Started: time.Now()}
	client := tfproto.NewProfilerServiceClient(conn)
	req := newRequest(opts)
	var sink *responseSink
	for attempt := 1; attempt <= opts.Attempts; attempt++ {
		res.Attempts = attempt
		sink = &responseSink{store: Store{LogDir: opts.LogDir, Run: opts.Run}}
		err := profileOnce(ctx, conn, client, req, sink, opts, res)
		if err != nil {
			sink.discard()
			res.Finished = time.Now()
			if reserved {
				os.Remove(Store{LogDir: opts.LogDir, Run: opts.Run}.Dir())
			}
			if sink.localErr != nil {
				path := filepath.Join(sink.store.Dir(), TraceFileName(opts.HostName))
				res.NotWritten = append(res.NotWritten, path)
				werr := sink.localErr
				var oe *outfile.Error
				if !errors.As(werr, &oe) {
					werr = &outfile.Error{Path: path, Err: werr} // a failed write, whatever failed in it
				}
				return res, &Error{Addr: addr, Msg: "the trace was captured but could not be written: " + sink.localErr.Error(), Err: werr}
			}
			return res, describe(addr, err, opts)
		}
		if !sink.emptyTrace || ctx.Err() != nil {
			break
		}
		sink.discard()
	}
	res.Finished = time.Now()
	res.EmptyTrace = sink.emptyTrace
	err := store(res, sink, req, opts)
	if reserved && res.Saved == SavedNone {
		os.Remove(Store{LogDir: opts.LogDir, Run: opts.Run}.Dir()) // only when empty: no run without a trace
	}
	return res, err
}

// newRequest builds the ProfileRequest as TensorFlow 2.21's own client
// (tf.profiler.experimental.client.trace, what TensorBoard's capture and TF
// Serving's profiler_client run) builds it, field for field, so that a
// server gives loadprof what it gives TensorBoard, but for two fields (the
// conformance test TestProfileRequestMatchesTensorFlowsClient holds the
// list):
//   - emit_xspace is set: the server returns the XSpace in the response
//     instead of saving it on its own disk, so the trace comes back over the
//     one gRPC port, through an SSH tunnel or from another machine. TF's
//     client leaves it unset.
//   - opts.start_timestamp_ns is left 0 (start on arrival). TF's client sets
//     it to the time of the call by the client's clock, and the server sleeps
//     until that time by its own clock before it opens the window: a client
//     clock ahead of the server's (another machine) would delay the window
//     by the skew, off the steady load it is timed to record.
func newRequest(opts Options) *tfproto.ProfileRequest {
	durationMs := uint64(opts.Duration / time.Millisecond)
	return &tfproto.ProfileRequest{
		DurationMs:     durationMs,
		MaxEvents:      opts.MaxEvents,
		Tools:          opts.Tools,
		RepositoryRoot: path.Join(filepath.ToSlash(opts.ServerLogDir), "plugins", "profile"),
		SessionId:      opts.Run,
		HostName:       opts.HostName,
		EmitXspace:     true,
		Opts: &tfproto.ProfileOptions{
			Version:           1,
			HostTracerLevel:   opts.HostTracerLevel,
			DeviceTracerLevel: opts.DeviceTracerLevel,
			PythonTracerLevel: opts.PythonTracerLevel,
			DurationMs:        durationMs, // the server times the window by this one
			// TF's client asks for tf.data's ops and for XLA's HLO protos (JAX's
			// and XLA programs' /host:metadata plane, which xprof's memory and
			// graph viewers read). It gives its logdir as the repository path;
			// loadprof gives the logdir as the server sees it, as in
			// repository_root.
			IncludeDatasetOps: true,
			EnableHloProto:    true,
			RepositoryPath:    filepath.ToSlash(opts.ServerLogDir),
		},
	}
}

// profileOnce makes one Profile call, the response going to sink. When ctx
// is cancelled during the window, it asks the server to end the session
// (Terminate) and still waits for the response, as the data would be lost
// otherwise, but only for opts.Grace: a server that takes the Terminate
// and never returns the trace must not hold an interrupted run for the
// rest of the window and the collection time.
func profileOnce(ctx context.Context, conn *grpc.ClientConn, client tfproto.ProfilerServiceClient, req *tfproto.ProfileRequest, sink *responseSink, opts Options, res *Result) error {
	callCtx, cancel := context.WithTimeout(context.Background(), opts.Duration+opts.Slack)
	defer cancel()
	done := make(chan struct{})
	terminated := make(chan bool, 1)
	go func() {
		select {
		case <-done:
			terminated <- false
		case <-ctx.Done():
			select {
			case <-done: // the window had already ended
				terminated <- false
				return
			default:
			}
			time.AfterFunc(opts.Grace, cancel) // the call ends as Canceled: "interrupted"
			tctx, tcancel := context.WithTimeout(context.Background(), opts.Grace)
			defer tcancel()
			_, err := client.Terminate(tctx, &tfproto.TerminateRequest{SessionId: req.GetSessionId()})
			if err != nil {
				cancel() // the server cannot end it early: give up on this window
			}
			terminated <- err == nil
		}
	}()
	// The response is not decoded into a ProfileResponse: streamCodec
	// writes the trace from gRPC's buffers to disk as it is, so a trace of
	// hundreds of MB costs one copy in memory and no garbage to collect
	// while the load runs.
	err := conn.Invoke(callCtx, tfproto.ProfilerService_Profile_FullMethodName, req, sink, grpc.ForceCodecV2(streamCodec{}), grpc.MaxCallRecvMsgSize(opts.MaxBytes))
	close(done)
	if <-terminated {
		res.Terminated = true
	}
	return err
}

func describe(addr string, err error, opts Options) error {
	st := status.Convert(err)
	switch st.Code() {
	case codes.Unimplemented:
		return &Error{Addr: addr, Err: err, Msg: "the server has no ProfilerService (TF Serving: it is on the gRPC port, 8500, unless --enable_profiler=false)"}
	case codes.Unavailable:
		if strings.Contains(st.Message(), "looked like an HTTP/1.1 header") {
			return &Error{Addr: addr, Err: err, Msg: "this port answered in HTTP/1.1, not gRPC: the ProfilerService is on the server's gRPC port (TF Serving: 8500; 8501 is REST)"}
		}
		return &Error{Addr: addr, Err: err, Msg: "unreachable: " + st.Message()}
	case codes.DeadlineExceeded:
		return &Error{Addr: addr, Err: err, Msg: fmt.Sprintf("no answer within the %s window plus %s for collection (raise profile.Options.Slack)", opts.Duration, opts.Slack)}
	case codes.Canceled:
		return &Error{Addr: addr, Err: err, Msg: "interrupted before the server returned the trace"}
	case codes.ResourceExhausted:
		if m := tooLarge.FindStringSubmatch(st.Message()); m != nil {
			return &Error{Addr: addr, Err: err, Msg: fmt.Sprintf("the trace is larger than profile.Options.MaxBytes %d (the server sent %s bytes); raise it", opts.MaxBytes, m[1])}
		}
	case codes.Internal:
		if strings.Contains(st.Message(), "unmarshal") {
			return &Error{Addr: addr, Err: err, Msg: "the server's answer is not a ProfileResponse (truncated or garbage): " + st.Message()}
		}
	}
	return &Error{Addr: addr, Err: err, Msg: fmt.Sprintf("%s: %s", st.Code(), st.Message())}
}

// tooLarge is how grpc-go refuses a message over MaxCallRecvMsgSize.
var tooLarge = regexp.MustCompile(`received message larger than max \((\d+) vs\. \d+\)`)

// store moves the files of a response into place and fills in where the
// trace is.
func store(res *Result, sink *responseSink, req *tfproto.ProfileRequest, opts Options) error {
	defer sink.discard()
	if sink.emptyTrace {
		return nil // nothing worth a file: the result says the trace was empty
	}
	st := sink.store
	switch {
	case sink.xspace != nil:
		p, err := st.Commit(sink.xspace, TraceFileName(opts.HostName))
		if err != nil {
			res.NotWritten = append(res.NotWritten, filepath.Join(st.Dir(), TraceFileName(opts.HostName)))
			return &Error{Addr: res.Address, Msg: "the trace was captured but could not be written: " + err.Error(), Err: err}
		}
		res.Saved, res.Files, res.TraceBytes = SavedLocal, append(res.Files, p), sink.xspaceBytes
	case len(sink.tools) > 0 || len(sink.refused) > 0:
		errs := sink.refused
		for _, td := range sink.tools {
			p, err := st.Commit(td.file, td.name)
			if err != nil {
				if SafeName(td.name) == nil && !errors.Is(err, ErrExists) {
					res.NotWritten = append(res.NotWritten, filepath.Join(st.Dir(), td.name))
				}
				errs = append(errs, err)
				continue
			}
			res.Files = append(res.Files, p)
		}
		if len(res.Files) > 0 {
			res.Saved = SavedLocal
		}
		if err := errors.Join(errs...); err != nil {
			msg := err.Error()
			if len(res.NotWritten) > 0 {
				msg = "the trace was captured but not all of it could be written: " + msg
			}
			return &Error{Addr: res.Address, Msg: msg, Err: err}
		}
	default:
		// An older server saved the trace on its own disk.
		res.ServerPath = path.Join(req.GetRepositoryRoot(), req.GetSessionId(), TraceFileName(req.GetHostName()))
		res.Saved = SavedServer
		local := filepath.Join(st.Dir(), TraceFileName(req.GetHostName()))
		if opts.ServerLogDir == opts.LogDir {
			if _, err := os.Stat(local); err == nil {
				res.Saved, res.Files = SavedLocal, []string{local} // the server shares this disk
			}
		}
	}
	return nil
}
