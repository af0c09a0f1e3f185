package main

import (
	"strings"
	"testing"

	"github.com/loadprof/loadprof/sim"
)

func TestProtocolFlagMistakesExitTwoNamingTheFlags(t *testing.T) {
	srv := startSim(t, sim.Config{})
	good := writeFile(t, "data.json", `{"instances": [[1, 2, 3, 4]]}`)
	grpc := []string{"run", "--grpc", srv.GRPCAddr(), "--model", "test_model", "--data", good, "--rate", "10"}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--url", srv.PredictURL(), "--data", good, "--rate", "10", "--protocol", "v2"}, "--protocol v2 is for --grpc: over REST the URL's path says the protocol"},
		{append(grpc, "--protocol", "v3"), "--protocol v3: want tf (TF Serving's PredictionService) or v2"},
		{append(grpc, "--protocol", "v2", "--model-label", "stable"), "--model-label: the V2 protocol (--protocol v2) has no version labels; give --model-version"},
	}
	for _, c := range cases {
		code, _, stderr := loadprof(t, c.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 2 || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
			t.Errorf("loadprof %s: exit %d, stderr %q; want exit 2 and one line with %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
	if srv.Predicts() != 0 {
		t.Fatalf("bad flags still sent %d requests", srv.Predicts())
	}
}
