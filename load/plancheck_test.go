package load

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestPlanCheckNamesTheSettingOutOfRange(t *testing.T) {
	ok := Plan{Rate: 10, Duration: time.Second, MaxInflight: 10}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	for want, change := range map[string]func(*Plan){
		"load.Plan.Rate NaN: must be a finite number":              func(p *Plan) { p.Rate = math.NaN() },
		"load.Plan.Rate +Inf: must be a finite number":             func(p *Plan) { p.Rate = math.Inf(1) },
		"load.Plan.Rate -1: must be positive":                      func(p *Plan) { p.Rate = -1 },
		"load.Plan.Rate 1e-12: must be at least 0.001":             func(p *Plan) { p.Rate = 1e-12 },
		"load.Plan.Rate 1e+09: must be at most 1e+07":              func(p *Plan) { p.Rate = 1e9 },
		"load.Plan.Concurrency -2: must be positive":               func(p *Plan) { p.Rate, p.Concurrency = 0, -2 },
		"load.Plan.Duration -1s: must not be negative":             func(p *Plan) { p.Duration = -time.Second },
		"load.Plan.Requests -1: must not be negative":              func(p *Plan) { p.Requests = -1 },
		"load.Plan.WarmupDuration -1s: must not be negative":       func(p *Plan) { p.WarmupDuration = -time.Second },
		"load.Plan.WarmupRequests -5: must not be negative":        func(p *Plan) { p.WarmupRequests = -5 },
		"load.Plan.MaxInflight 0: must be at least 1":              func(p *Plan) { p.MaxInflight = 0 },
		"load.Plan.Grace -1s: must not be negative":                func(p *Plan) { p.Grace = -time.Second },
		"load.Plan.SendSlack -1µs: must not be negative":           func(p *Plan) { p.SendSlack = -time.Microsecond },
		"load.Plan.SendSlack 11ms: must be at most 10ms":           func(p *Plan) { p.SendSlack = 11 * time.Millisecond },
		"give load.Plan.Rate (open loop) or load.Plan.Concurrency": func(p *Plan) { p.Rate = 0 },
	} {
		p := ok
		change(&p)
		err := p.Check()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", p, err, want)
		}
		var se *SettingError
		if !errors.As(err, &se) || !strings.HasPrefix(want, "give") && !strings.HasPrefix(want, se.Setting+" ") {
			t.Errorf("%v: not a *SettingError naming its setting (%#v)", err, se)
		}
	}
	// A rate whose interval is longer than the steady phase is allowed.
	slow := Plan{Rate: 0.1, Duration: 5 * time.Second, MaxInflight: 1}
	if err := slow.Check(); err != nil {
		t.Fatal(err)
	}
}
