package main

import (
	"io"

	"github.com/loadprof/loadprof/internal/setting"
	"github.com/loadprof/loadprof/report"
)

// settingFlags maps each setting loadprof's packages can name in an error
// or a warning (its Go name, see load.SettingError) to the flag that sets
// it, so that the user reads flags only. TestEveryLibrarySettingHasAFlag
// finds the names the packages use.
var settingFlags = map[string]string{
	"load.Plan.Rate":           "--rate",
	"load.Plan.Concurrency":    "--concurrency",
	"load.Plan.Duration":       "--duration",
	"load.Plan.Requests":       "--requests",
	"load.Plan.WarmupDuration": "--warmup",
	"load.Plan.WarmupRequests": "--warmup",
	"load.Plan.MaxInflight":    "--max-inflight",
	"load.Plan.Grace":          "--grace",
	"load.Plan.SendSlack":      "--send-slack",
	"load.RESTConfig.URL":      "--url",
	"load.RESTConfig.Engine":   "--rest-engine",
	"load.DialGRPC.target":     "--grpc",

	"bench.Config.URL":               "--url",
	"bench.Config.Timeout":           "--timeout",
	"bench.Config.MaxResponseBytes":  "--max-response",
	"bench.Config.V2Binary":          "--v2-binary",
	"bench.Config.GRPC.Addr":         "--grpc",
	"bench.Config.GRPC.Model":        "--model",
	"bench.Config.GRPC.Protocol":     "--protocol",
	"bench.Config.GRPC.Version":      "--model-version",
	"bench.Config.GRPC.Label":        "--model-label",
	"bench.Config.GRPC.Connections":  "--connections",
	"bench.Config.TLS.Enabled":       "--tls",
	"bench.Config.TLS.CA":            "--ca",
	"bench.Config.TLS.Cert":          "--cert",
	"bench.Config.TLS.Key":           "--key",
	"bench.Config.Profile.Delay":     "--profile-delay",
	"bench.Config.Profile.Required":  "--profile-required",
	"bench.SweepConfig.Tolerance":    "--search-tolerance",
	"bench.SweepConfig.Stability":    "--step-stability",
	"bench.SweepConfig.Repeats":      "--step-repeats",
	"bench.SweepConfig.ProfileSteps": "--profile-steps",

	"profile.Options.Duration": "--profile-duration",
	"profile.Options.Slack":    "--profile-timeout",
	"profile.Options.Attempts": "--profile-attempts",
	"profile.Options.MaxBytes": "--profile-max-bytes",
	"profile.Options.LogDir":   "--logdir",

	"payloads.Load.path":        "--data",
	"payloads.Options.MaxBytes": "--max-payload",

	"report.ParseSLO":    "--slo",
	"bench.Config.SLO":   "--slo",
	"report.ParseLimits": "--max",

	"sim.ParseTensorSpec":     "--input",
	"sim.Latency.Fixed":       "--latency",
	"sim.Latency.Jitter":      "--jitter",
	"sim.Latency.Stall":       "--stall",
	"sim.Latency.StallEvery":  "--stall-every",
	"sim.Latency.Workers":     "--workers",
	"sim.Latency.ErrorRate":   "--error-rate",
	"sim.Latency.ErrorStatus": "--error-status",
	"sim.Config.REST":         "--rest",
	"sim.Config.GRPC":         "--grpc",
	"sim.Config.NetworkDelay": "--network-delay",

	"sim.LLM.TTFT":                   "--ttft",
	"sim.LLM.TokenDelay":             "--token-delay",
	"sim.LLM.TokenJitter":            "--token-jitter",
	"sim.LLM.OutputTokens":           "--output-tokens",
	"sim.LLM.InputTokensPerWord":     "--input-tokens-per-word",
	"sim.LLM.Capacity":               "--llm-capacity",
	"sim.StreamFaults.StallRate":     "--stream-stall-rate",
	"sim.StreamFaults.CloseRate":     "--stream-close-rate",
	"sim.StreamFaults.MalformedRate": "--stream-malformed-rate",
	"sim.StreamFaults.Stall":         "--stream-stall",
	"sim.StreamFaults.After":         "--stream-fault-after",
	"payloads.LoadOpenAI.path":       "--data",

	"cluster.Config.Workers":           "--workers",
	"cluster.Config.Token":             "--token",
	"cluster.WorkerConfig.Token":       "--token",
	"cluster.Config.LostAfter":         "--worker-lost-after",
	"cluster.WorkerConfig.Coordinator": "--join",
	"bench.Config.DataPath":            "--data",
	"bench.Config.RemoteWindow":        "--workers",
	"bench.Config.Profile":             "--profile",

	"servermetrics.Config.URL":      "--metrics",
	"servermetrics.Config.Interval": "--metrics-interval",
	"servermetrics.Config.Timeout":  "--metrics-timeout",
}

// settingsWithoutFlags are library settings no flag sets: the command
// leaves them at their zero value, so no error of the command names them.
var settingsWithoutFlags = map[string]bool{
	"sim.Latency.WhileProfiling": true,
	"sim.LLM.KeepStreams":        true,
}

// inFlags is msg with every library setting named by its flag.
func inFlags(msg string) string { return setting.Rename(msg, settingFlags) }

// flagWriter passes what a library writes (a warning line) on with its
// settings named by their flags.
type flagWriter struct{ w io.Writer }

func (f flagWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(f.w, inFlags(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// inFlagTerms rewrites the messages a Result keeps from the library (a
// failed profile window) in flag terms, for the summary and result.json.
func inFlagTerms(res *report.Result) {
	if res != nil && res.Profile != nil {
		res.Profile.Error = inFlags(res.Profile.Error)
	}
}
