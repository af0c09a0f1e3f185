package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/loadprof/loadprof/bench"
	"github.com/loadprof/loadprof/cluster"
	"github.com/loadprof/loadprof/kube"
	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/payloads"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"
)

// k8sOwnedFlags are the run flags the manifests set themselves (paths in
// the pods, the coordination); k8sRefusedFlags those a pod cannot use.
var (
	k8sOwnedFlags = map[string]bool{
		"data": true, "out": true, "html": true, "hlog": true, "logdir": true, "ca": true, "cert": true, "key": true, "quiet": true,
		"workers": true, "listen": true, "token": true, "serve-results": true, "serve-for": true,
	}
	k8sRefusedFlags = map[string]string{
		"hgrm":       "--hgrm: the pod keeps --out, from which 'loadprof report --hgrm' makes it",
		"cpuprofile": "--cpuprofile is for loadprof's own development",
	}
)

func k8sCommand(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("k8s", pflag.ContinueOnError)
	workers := fs.Int("workers", 0, "worker pods (an Indexed Job with this parallelism); required")
	image := fs.String("image", "", "the image with the loadprof binary (see the Dockerfile); required")
	namespace := fs.String("namespace", "", "namespace of every object (default: kubectl's)")
	name := fs.String("name", kube.DefaultName, "prefix of the objects' names: NAME-coordinator, NAME-workers, NAME-token, NAME-data")
	token := fs.String("token", "", "the shared token put in the Secret (default: a random one)")
	port := fs.Int("port", kube.DefaultPort, "the coordinator's port")
	workerCPU := fs.String("worker-cpu", "1", "CPU request of each worker (no CPU limit: it would throttle the load)")
	workerMemory := fs.String("worker-memory", "512Mi", "memory request and limit of each worker")
	coordCPU := fs.String("coordinator-cpu", "500m", "CPU request of the coordinator")
	coordMemory := fs.String("coordinator-memory", "512Mi", "memory request and limit of the coordinator")
	serveFor := fs.Duration("serve-for", kube.DefaultServeFor, "how long the coordinator waits, after the run, for its results to be fetched")
	deadline := fs.Duration("deadline", 0, "activeDeadlineSeconds of both Jobs (0: none)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: loadprof k8s --workers N --image IMAGE [--namespace NS] -- run <run flags>\n\n"+
			"Prints the manifests (one JSON List for kubectl apply -f) of a coordinated run on Kubernetes: the coordinator as\n"+
			"a Job behind a Service, the workers as an Indexed Job, the token in a Secret, --data in a ConfigMap and --ca,\n"+
			"--cert, --key in a Secret. The README walks through apply, wait, fetch and delete.\n\nFlags:\n%s", fs.FlagUsages())
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return usageError(fs, err, stdout, stderr)
	}
	if err := checkK8sFlags(fs, *workers, *port, *deadline, map[string]string{
		"worker-cpu": *workerCPU, "worker-memory": *workerMemory, "coordinator-cpu": *coordCPU, "coordinator-memory": *coordMemory,
	}); err != nil {
		printError(stderr, "k8s", err)
		return exitBadInput
	}
	rest := fs.Args()
	if fs.ArgsLenAtDash() != 0 || len(rest) == 0 || rest[0] != "run" {
		fmt.Fprintln(stderr, "loadprof k8s: want the run after --: loadprof k8s --workers N --image IMAGE -- run --url ... --data ... --rate ...")
		return exitBadInput
	}
	runFS, flags := newRunFlags()
	if code, done := parseFlags(runFS, rest[1:], stdout, stderr); done {
		return code
	}
	var refused []string
	runFS.Visit(func(f *pflag.Flag) {
		if msg, ok := k8sRefusedFlags[f.Name]; ok {
			refused = append(refused, msg)
		}
		if f.Name == "workers" || f.Name == "listen" || f.Name == "token" || f.Name == "serve-results" {
			refused = append(refused, fmt.Sprintf("--%s goes before the --: the manifests set it for the coordinator", f.Name))
		}
	})
	if len(refused) > 0 {
		fmt.Fprintf(stderr, "loadprof k8s: %s\n", refused[0])
		return exitBadInput
	}
	if *flags.data == "-" {
		fmt.Fprintln(stderr, "loadprof k8s: --data -: the payload goes into a ConfigMap; give a file or a directory")
		return exitBadInput
	}
	// Check the run's flags as `run` would, the payload included, and
	// its load against the workers that share it: as the coordinator's
	// run, which the manifests give --workers and a token (so that its
	// own coordination flags, --join-timeout, --worker-lost-after, are
	// checked, not refused).
	_ = runFS.Set("workers", strconv.Itoa(*workers))
	_ = runFS.Set("token", "checked-only")
	opts, err := flags.options(runFS, strings.NewReader(""), io.Discard)
	if err == nil && opts.sweep == nil {
		err = opts.bench.Plan.Check() // what run checks when the load starts
	}
	if err == nil {
		err = cluster.CheckShares(opts.bench, *workers)
	}
	if err != nil {
		printError(stderr, "k8s", err)
		return exitBadInput
	}
	target := *flags.url
	if *flags.grpcAddr != "" {
		target = ""
	}
	if _, err := cluster.LoadPayloads(target, *flags.data, payloads.Options{MaxBytes: *flags.maxPayload}); err != nil {
		printError(stderr, "k8s", err)
		return exitBadInput
	}
	data, err := cluster.ReadData(*flags.data, nil, *flags.maxPayload)
	if err != nil {
		printError(stderr, "k8s", err)
		return exitBadInput
	}
	spec := kube.Spec{
		Name: *name, Namespace: *namespace, Image: *image, Workers: *workers, Token: *token, Port: *port,
		Data: kube.Input{Dir: data.Dir}, Profile: *flags.profileAddr != "", HTML: *flags.htmlOut != "", HLog: *flags.hlog != "",
		ServeFor: *serveFor, ActiveDeadline: *deadline,
		WorkerCPU: *workerCPU, WorkerMemory: *workerMemory, CoordCPU: *coordCPU, CoordMemory: *coordMemory,
	}
	if !runFS.Changed("join-timeout") {
		// Pods wait to be scheduled and to pull the image.
		spec.JoinTimeout = 10 * time.Minute
	}
	if *deadline > 0 {
		joinWait := spec.JoinTimeout
		if joinWait == 0 {
			joinWait = *flags.cluster.joinTimeout
		}
		run, whole := runLength(opts)
		switch {
		case run > 0 && *deadline < run:
			fmt.Fprintf(stderr, "loadprof k8s: --deadline %v: shorter than the run itself (%v of warm-up and duration%s): Kubernetes would stop both Jobs before the load ends\n", *deadline, run, map[bool]string{true: " over the sweep's steps"}[opts.sweep != nil])
			return exitBadInput
		case run > 0 && *deadline < whole+joinWait+*serveFor:
			fmt.Fprintf(stderr, "loadprof k8s: warning: --deadline %v is shorter than the join wait (up to %v) + the run (%v) + --serve-for %v: Kubernetes may stop the Jobs before the results are fetched\n", *deadline, joinWait, whole, *serveFor)
		}
	}
	for _, f := range data.Files {
		spec.Data.Files = append(spec.Data.Files, kube.File{Name: f.Name, Content: f.Content})
	}
	for _, tf := range []struct{ flag, path string }{{"ca", *flags.ca}, {"cert", *flags.cert}, {"key", *flags.key}} {
		if tf.path == "" {
			continue
		}
		content, err := os.ReadFile(tf.path)
		if err != nil {
			fmt.Fprintf(stderr, "loadprof k8s: --%s %s: %v\n", tf.flag, tf.path, err)
			return exitBadInput
		}
		spec.TLS = append(spec.TLS, kube.FlagFile{Flag: tf.flag, File: kube.File{Name: baseName(tf.path), Content: content}})
	}
	runFS.Visit(func(f *pflag.Flag) {
		if k8sOwnedFlags[f.Name] {
			return
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			for _, v := range sv.GetSlice() {
				if k, _, _ := strings.Cut(v, ":"); isCredential(k) {
					switch f.Name { // the Secret, not the args
					case "header":
						spec.SecretHeaders = append(spec.SecretHeaders, v)
						continue
					case "metrics-header":
						spec.SecretMetricsHeaders = append(spec.SecretMetricsHeaders, v)
						continue
					}
				}
				spec.RunArgs = append(spec.RunArgs, "--"+f.Name+"="+v)
			}
			return
		}
		spec.RunArgs = append(spec.RunArgs, "--"+f.Name+"="+f.Value.String())
	})
	for _, f := range []struct{ flag, in string }{{"out", "/results/result.json"}, {"html", "/results/report.html"}, {"hlog", "/results/result.hlog"}, {"logdir", "/results/tb"}} {
		if runFS.Changed(f.flag) {
			fmt.Fprintf(stderr, "loadprof k8s: warning: --%s %s: the coordinator writes %s in its pod instead; it leaves the cluster with the results (see the README)\n", f.flag, runFS.Lookup(f.flag).Value, f.in)
		}
	}
	objs, err := kube.Manifests(spec)
	if err == nil {
		err = kube.Write(stdout, objs)
	}
	if err != nil {
		printError(stderr, "k8s", err)
		return exitBadInput
	}
	return exitOK
}

// checkK8sFlags checks k8s's own flags: one error naming the first
// wrong one.
func checkK8sFlags(fs *pflag.FlagSet, workers, port int, deadline time.Duration, quantities map[string]string) error {
	if err := firstError(atLeast("--workers", workers, 1), atMost("--workers", workers, cluster.MaxWorkers, cluster.MaxWorkersWhy),
		atLeast("--port", port, 1), atMost("--port", port, 65535, "")); err != nil {
		return err
	}
	if fs.Changed("deadline") {
		if err := positiveDuration("--deadline", deadline); err != nil {
			return err
		}
	}
	for _, name := range []string{"worker-cpu", "worker-memory", "coordinator-cpu", "coordinator-memory"} {
		q, err := resource.ParseQuantity(quantities[name])
		if err != nil || q.Sign() <= 0 {
			return fmt.Errorf("--%s %q: want a positive Kubernetes quantity (500m, 2, 512Mi, 1Gi)", name, quantities[name])
		}
	}
	return nil
}

// isCredential reports whether a header carries a credential, as result
// files judge it (they redact it).
func isCredential(key string) bool {
	return strings.Contains(bench.RedactHeaders([]load.Header{{Key: key, Value: "x"}})[0], "<redacted>")
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// runLength is how long a coordinated run's load lasts at least: its
// warm-up and duration, each step's for a sweep (its bisection and
// repeats not counted); whole adds each round's start delay. Zero for
// a run bounded by a request count.
func runLength(opts *runOptions) (run, whole time.Duration) {
	p := opts.bench.Plan
	if p.Duration <= 0 {
		return 0, 0
	}
	rounds := 1
	if opts.sweep != nil {
		rounds = len(opts.sweep.steps.Values)
	}
	run = time.Duration(rounds) * (p.WarmupDuration + p.Duration)
	return run, run + time.Duration(rounds)*cluster.DefaultStartDelay
}
