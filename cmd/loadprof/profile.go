package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/loadprof/loadprof/internal/outfile"
	"github.com/loadprof/loadprof/profile"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// profileFlags are the capture settings shared by run and profile.
type profileFlags struct {
	duration, slack        time.Duration
	logdir, serverLogdir   string
	hostName               string
	hostLevel, deviceLevel uint32
	pythonLevel            uint32
	attempts               int
	maxBytes               int64
}

func addProfileFlags(fs *pflag.FlagSet) *profileFlags {
	p := &profileFlags{}
	fs.DurationVar(&p.duration, "profile-duration", 4*time.Second, "length of the profile window")
	fs.StringVar(&p.logdir, "logdir", "tb", "TensorBoard logdir: traces go under LOGDIR/plugins/profile/RUN")
	fs.StringVar(&p.serverLogdir, "server-logdir", "", "the logdir as the server sees it, for servers that save traces on their own disk (default: --logdir)")
	fs.StringVar(&p.hostName, "profile-host-name", "", "host_name in the ProfileRequest (default: the profile address as given, as TensorFlow's client sends it); the trace file is named after it, ':' as '_'")
	fs.Uint32Var(&p.hostLevel, "host-tracer-level", 2, "host tracer level 1-3")
	fs.Uint32Var(&p.deviceLevel, "device-tracer-level", 1, "device tracer level 0-1")
	fs.Uint32Var(&p.pythonLevel, "python-tracer-level", 0, "python tracer level 0-1")
	fs.IntVar(&p.attempts, "profile-attempts", 3, "captures tried while the server reports an empty trace")
	fs.DurationVar(&p.slack, "profile-timeout", 60*time.Second, "time allowed past the window for the server to collect and return the trace")
	fs.Int64Var(&p.maxBytes, "profile-max-bytes", profile.DefaultMaxBytes, "largest trace accepted from the server, in bytes (it is streamed to disk; a larger one is refused)")
	return p
}

func (p *profileFlags) options() (profile.Options, error) {
	switch {
	case p.duration <= 0:
		return profile.Options{}, fmt.Errorf("--profile-duration %v: must be positive", p.duration)
	case p.slack <= 0:
		return profile.Options{}, fmt.Errorf("--profile-timeout %v: must be positive", p.slack)
	case p.hostLevel > 3 || p.deviceLevel > 1 || p.pythonLevel > 1:
		return profile.Options{}, errors.New("tracer levels: --host-tracer-level 0-3, --device-tracer-level and --python-tracer-level 0-1")
	case p.logdir == "":
		return profile.Options{}, errors.New("--logdir must not be empty")
	case p.attempts < 1:
		return profile.Options{}, fmt.Errorf("--profile-attempts %d: must be at least 1", p.attempts)
	case p.maxBytes < 1 || p.maxBytes > math.MaxInt32:
		// gRPC frames a message with a 32-bit length.
		return profile.Options{}, fmt.Errorf("--profile-max-bytes %d: must be between 1 and %d", p.maxBytes, math.MaxInt32)
	}
	return profile.Options{
		Duration: p.duration, LogDir: p.logdir, ServerLogDir: p.serverLogdir, HostName: p.hostName,
		HostTracerLevel: p.hostLevel, DeviceTracerLevel: p.deviceLevel, NoDeviceTracer: p.deviceLevel == 0,
		PythonTracerLevel: p.pythonLevel, Attempts: p.attempts, Slack: p.slack, MaxBytes: int(p.maxBytes),
	}, nil
}

// profileCommand captures a profile with no load: the seed's manual
// CAPTURE step, scripted.
func profileCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("profile", pflag.ContinueOnError)
	addr := fs.String("addr", "", "ProfilerService HOST:PORT (TF Serving's gRPC port, 8500)")
	p := addProfileFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: loadprof profile --addr HOST:PORT [--profile-duration D] [--logdir DIR]\n\nCaptures one profile window, like TensorBoard's CAPTURE button.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if code, done := parseFlags(fs, args, stdout, stderr); done {
		return code
	}
	if *addr == "" {
		fmt.Fprintln(stderr, "loadprof profile: --addr is required (see 'loadprof profile --help')")
		return exitBadInput
	}
	target, err := profile.NormalizeAddr(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "loadprof profile: --addr %v\n", err)
		return exitBadInput
	}
	*addr = target
	opts, err := p.options()
	if err != nil {
		printError(stderr, "profile", err)
		return exitBadInput
	}
	if err := outfile.CheckDir("--logdir", opts.LogDir, profile.PluginDir(opts.LogDir)); err != nil {
		printError(stderr, "profile", err)
		return exitBadInput
	}
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(stderr, "loadprof profile: --addr %s: %v\n", *addr, err)
		return exitBadInput
	}
	defer conn.Close()
	res, err := profile.Capture(ctx, conn, *addr, opts)
	if res != nil {
		switch res.Saved {
		case profile.SavedLocal:
			for _, f := range res.Files {
				fmt.Fprintf(stdout, "trace written here: %s\n", f)
			}
			fmt.Fprintf(stdout, "open with: tensorboard --logdir %s  (Profile tab, run %s)\n", opts.LogDir, res.Run)
		case profile.SavedServer:
			fmt.Fprintf(stdout, "trace saved by the SERVER on its own disk: %s (not on this machine)\n", res.ServerPath)
		}
		for _, f := range res.NotWritten {
			fmt.Fprintf(stdout, "trace captured but NOT written to %s (see the error)\n", f)
		}
		if res.EmptyTrace {
			fmt.Fprintf(stdout, "the server reported an empty trace after %d attempt(s)\n", res.Attempts)
		}
		if files := res.TraceFiles(); len(files) > 0 {
			sum, err := profile.SummarizeFiles(files)
			if err != nil {
				fmt.Fprintf(stderr, "loadprof profile: summarising the trace: %v\n", err)
			} else {
				fmt.Fprintln(stdout)
				sum.Write(stdout, 10)
			}
		}
	}
	if err != nil {
		printError(stderr, "profile", err)
		var write *outfile.Error
		switch {
		case errors.As(err, &write):
			return exitWrite
		case ctx.Err() != nil:
			return interruptCode(ctx)
		}
		return exitTarget
	}
	if ctx.Err() != nil {
		return interruptCode(ctx)
	}
	return exitOK
}

// traceCommand is `loadprof trace summary PATH`.
func traceCommand(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("trace summary", pflag.ContinueOnError)
	top := fs.Int("top", 20, "ops to show of each plane")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: loadprof trace summary PATH [--top N]\n\n"+
			"Top ops by self time of an .xplane.pb file, a run directory, or the newest run of a logdir,\n"+
			"plane by plane: the host's TensorFlow ops as xprof's framework_op_stats (TensorBoard's\n"+
			"TensorFlow stats) counts them, runtime markers left out; each /device:* plane on its own.\n"+
			"A share is an op's self time over its plane's time in ops.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if len(args) == 0 || args[0] != "summary" {
		fmt.Fprintln(stderr, "loadprof trace: usage: loadprof trace summary PATH")
		return exitBadInput
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return exitOK
		}
		printError(stderr, "trace summary", err)
		return exitBadInput
	}
	if *top < 1 {
		fmt.Fprintf(stderr, "loadprof trace summary: --top %d: must be at least 1\n", *top)
		return exitBadInput
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "loadprof trace summary: give one PATH (an .xplane.pb file, a run directory or a logdir)")
		return exitBadInput
	}
	sum, files, err := profile.SummarizePath(fs.Arg(0))
	if err != nil {
		printError(stderr, "trace summary", err)
		return exitBadInput
	}
	for _, f := range files {
		fmt.Fprintf(stdout, "trace: %s\n", f)
	}
	sum.Write(stdout, *top)
	return exitOK
}
