// Command loadprof drives predict load at a TensorFlow Serving model server,
// reports HDR latency histograms and (with --profile) captures a server
// profile in the middle of the steady load. This file holds flag parsing
// and wiring only.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/cluster"
	"github.com/loadprof/loadprof/internal/outfile"
	"github.com/spf13/pflag"
)

// Exit codes: a contract with scripts and CI.
const (
	exitOK          = 0
	exitRegression  = 1
	exitBadInput    = 2
	exitTarget      = 3
	exitWrite       = 4   // an output (--out, --hgrm, --hlog, --html, a trace) could not be written
	exitWorkers     = 5   // a coordinated run lacks workers (not joined, refused, lost, failed): the result holds the others'
	exitInterrupted = 130 // SIGINT (Ctrl-C)
	exitTerminated  = 143 // SIGTERM
)

const usage = `loadprof: how fast is my model in production, and where does the time go?

Usage:
  loadprof run    (--url URL | --grpc HOST:PORT [--protocol v2] --model NAME) --data FILE (--rate R | --concurrency N) [flags]
  loadprof run    ... --workers N --listen ADDR   coordinate N workers that share the load
  loadprof worker --join HOST:PORT               join a coordinated run
  loadprof k8s    --workers N --image IMAGE -- run ...   print Kubernetes manifests for one
  loadprof sim    [--rest ADDR] [--model NAME] [--latency D] [flags]
  loadprof profile --addr HOST:PORT [--profile-duration D] [--logdir DIR]
  loadprof trace summary PATH
  loadprof compare BASE.json NEW.json [--max p99=10%,p50=10%,rps=5%,errors=0]  (how far each may worsen)
  loadprof merge A.json B.json ... -o OUT.json
  loadprof report RESULT.json [MORE.json ...] [--html FILE] [--hgrm FILE] [--max LIMITS with two results]
  loadprof demo   a short profiled run against the embedded simulator

Run 'loadprof COMMAND --help' for the flags of a command.
`

func main() {
	// A reader that stops early (| head) must not kill the process before
	// it writes its files: the summary's lines are then dropped (EPIPE),
	// and an output sent to that pipe (--out -) is reported NOT written.
	signal.Ignore(syscall.SIGPIPE)
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitBadInput
	}
	ctx, stop := interruptContext(stderr)
	defer stop()
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return runCommand(ctx, rest, stdin, stdout, stderr)
	case "worker":
		return workerCommand(ctx, rest, stdout, stderr)
	case "k8s":
		return k8sCommand(rest, stdout, stderr)
	case "sim":
		return simCommand(ctx, rest, stdout, stderr)
	case "profile":
		return profileCommand(ctx, rest, stdout, stderr)
	case "trace":
		return traceCommand(rest, stdout, stderr)
	case "compare":
		return compareCommand(rest, stdout, stderr)
	case "report":
		return reportCommand(rest, stdout, stderr)
	case "merge":
		return mergeCommand(rest, stdout, stderr)
	case "demo":
		return demoCommand(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "version", "--version":
		fmt.Fprintln(stdout, "loadprof", bench.Version)
		return exitOK
	}
	fmt.Fprintf(stderr, "loadprof: unknown command %q\n\n%s", cmd, usage)
	return exitBadInput
}

// usageError reports a flag parse error (or prints help) for commands that
// take positional arguments.
func usageError(fs *pflag.FlagSet, err error, stdout, stderr io.Writer) int {
	if errors.Is(err, pflag.ErrHelp) {
		fs.SetOutput(stdout)
		fs.Usage()
		return exitOK
	}
	fmt.Fprintf(stderr, "loadprof %s: %v (see 'loadprof %s --help')\n", fs.Name(), err, fs.Name())
	return exitBadInput
}

// parseFlags parses args into fs and reports a usage error as one line.
// done is true when the command should exit with code.
func parseFlags(fs *pflag.FlagSet, args []string, stdout, stderr io.Writer) (code int, done bool) {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return exitOK, true
		}
		fmt.Fprintf(stderr, "loadprof %s: %v (see 'loadprof %s --help')\n", fs.Name(), err, fs.Name())
		return exitBadInput, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadprof %s: unexpected argument %q (see 'loadprof %s --help')\n", fs.Name(), fs.Arg(0), fs.Name())
		return exitBadInput, true
	}
	return 0, false
}

// exitCode maps a run's error to the documented exit codes.
func exitCode(err error, interrupt int) int {
	var in *bench.InputError
	var target *bench.TargetError
	var write *outfile.Error
	var workers *cluster.WorkersError
	switch {
	case err == nil && interrupt != 0:
		return interrupt
	case err == nil:
		return exitOK
	case errors.As(err, &write):
		return exitWrite
	case errors.As(err, &in):
		return exitBadInput
	case errors.As(err, &target):
		return exitTarget
	case errors.As(err, &workers):
		return exitWorkers
	case interrupt != 0:
		return interrupt
	}
	return exitBadInput
}

// flagged names the flag of an output error that came without one.
func flagged(err error, flag string) error {
	var oe *outfile.Error
	if errors.As(err, &oe) && oe.Flag == "" {
		oe.Flag = flag
	}
	return err
}

// printError writes err with the command's prefix on each line (a joined
// error has one line per failure), every library setting in it named by
// its flag.
func printError(w io.Writer, cmd string, err error) {
	for _, line := range strings.Split(inFlags(err.Error()), "\n") {
		fmt.Fprintf(w, "loadprof %s: %s\n", cmd, line)
	}
}

// reportOutput says whether the output path was written: never "written"
// for one that failed.
func reportOutput(w io.Writer, what, path string, err error) {
	if path == "" {
		return
	}
	where := path
	if outfile.IsStdout(path) {
		where = "standard output"
	}
	if _, failed := outfile.Failed(err)[path]; failed {
		fmt.Fprintf(w, "%s NOT written to %s (see the error)\n", what, where)
		return
	}
	fmt.Fprintf(w, "%s written to %s\n", what, where)
}
