package main

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestSimLLMFlagsReachTheSimulator(t *testing.T) {
	fs := pflag.NewFlagSet("sim", pflag.ContinueOnError)
	var flags simFlags
	flags.register(fs, "127.0.0.1:0", "")
	err := fs.Parse([]string{"--ttft", "40ms", "--token-delay", "7ms", "--token-jitter", "2ms", "--token-seed", "9",
		"--output-tokens", "64", "--input-tokens-per-word", "1.3", "--stream-stall-rate", "0.1", "--stream-stall", "2s",
		"--stream-close-rate", "0.2", "--stream-malformed-rate", "0.3", "--stream-fault-after", "5", "--profile-dir", "/tmp/p"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := flags.config()
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.LLM
	if l.TTFT != 40*time.Millisecond || l.TokenDelay != 7*time.Millisecond || l.TokenJitter != 2*time.Millisecond || l.Seed != 9 ||
		l.OutputTokens != 64 || l.InputTokensPerWord != 1.3 || l.ProfileDir != "/tmp/p" {
		t.Errorf("LLM %+v", l)
	}
	if f := l.Faults; f.StallRate != 0.1 || f.Stall != 2*time.Second || f.CloseRate != 0.2 || f.MalformedRate != 0.3 || f.After != 5 {
		t.Errorf("faults %+v", f)
	}
}

func TestSimLLMFlagsOutOfRangeExitTwo(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--token-delay", "5ms", "--token-jitter", "6ms"}, "--token-jitter 6ms: must be at most --token-delay 5ms"},
		{[]string{"--ttft", "0s", "--token-delay", "0s"}, "--ttft and --token-delay: one of them must be above 0"},
		{[]string{"--output-tokens", "0"}, "--output-tokens"},
		{[]string{"--input-tokens-per-word", "0"}, "--input-tokens-per-word 0: must be a positive number"},
		{[]string{"--stream-close-rate", "0.7", "--stream-stall-rate", "0.7"}, "must be at most 1"},
		{[]string{"--stream-malformed-rate", "2"}, "--stream-malformed-rate"},
		{[]string{"--ttft", "-1ms"}, "--ttft"},
	}
	for _, c := range cases {
		code, _, stderr := loadprof(t, append([]string{"sim", "--rest", "127.0.0.1:0", "--grpc", ""}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("sim %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
}
