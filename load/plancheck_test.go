package load

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestPlanCheckNamesTheFlagOutOfRange(t *testing.T) {
	ok := Plan{Rate: 10, Duration: time.Second, MaxInflight: 10}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	for want, change := range map[string]func(*Plan){
		"--rate NaN: must be a finite number":      func(p *Plan) { p.Rate = math.NaN() },
		"--rate +Inf: must be a finite number":     func(p *Plan) { p.Rate = math.Inf(1) },
		"--rate -1: must be positive":              func(p *Plan) { p.Rate = -1 },
		"--rate 1e-12: must be at least 0.001":     func(p *Plan) { p.Rate = 1e-12 },
		"--rate 1e+09: must be at most 1e+07":      func(p *Plan) { p.Rate = 1e9 },
		"--concurrency -2: must be positive":       func(p *Plan) { p.Rate, p.Concurrency = 0, -2 },
		"--duration -1s: must not be negative":     func(p *Plan) { p.Duration = -time.Second },
		"--requests -1: must not be negative":      func(p *Plan) { p.Requests = -1 },
		"--warmup -1s: must not be negative":       func(p *Plan) { p.WarmupDuration = -time.Second },
		"--warmup -5: must not be negative":        func(p *Plan) { p.WarmupRequests = -5 },
		"--max-inflight 0: must be at least 1":     func(p *Plan) { p.MaxInflight = 0 },
		"--grace -1s: must not be negative":        func(p *Plan) { p.Grace = -time.Second },
		"give --rate (open loop) or --concurrency": func(p *Plan) { p.Rate = 0 },
	} {
		p := ok
		change(&p)
		if err := p.Check(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", p, err, want)
		}
	}
	// A rate whose interval is longer than the steady phase is allowed.
	slow := Plan{Rate: 0.1, Duration: 5 * time.Second, MaxInflight: 1}
	if err := slow.Check(); err != nil {
		t.Fatal(err)
	}
}
