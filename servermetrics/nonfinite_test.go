package servermetrics

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A request counter that reads NaN on one scrape is no reading of it for
// that scrape: the steady window counts its change between the readings
// around it, the intervals at that scrape leave it out, a warning says
// so, and nothing in the report is NaN.
func TestANaNCounterIsAFailedReadingOfItsFamily(t *testing.T) {
	values := []string{"100", "200", "NaN", "400", "500", "600"}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := min(int(n.Add(1))-1, len(values)-1)
		fmt.Fprintf(w, "# TYPE :tensorflow:serving:request_count counter\n:tensorflow:serving:request_count{model_name=\"m\",status=\"OK\"} %s\n", values[i])
	}))
	defer srv.Close()
	sm, err := Start(context.Background(), Config{URL: srv.URL, Model: "m", Interval: time.Hour, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	wait := func(k int) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for len(sm.Samples()) < k {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting for scrape %d", k)
			}
			time.Sleep(time.Millisecond)
		}
	}
	wait(1)
	sm.Mark(MarkSteadyStart) // 200
	wait(2)
	sm.Mark(MarkProfileOpen) // NaN
	wait(3)
	sm.Mark(MarkProfileClose) // 400
	wait(4)
	sm.Mark(MarkSteadyEnd) // 500
	wait(5)
	sm.Close()
	rep := sm.Report()
	if rep.Steady == nil || rep.Steady.Requests == nil || *rep.Steady.Requests != 300 {
		t.Fatalf("steady window %+v: want 300 requests (500-200, across the NaN reading)", rep.Steady)
	}
	for _, iv := range rep.Intervals {
		if iv.Requests != nil && iv.Start.Before(iv.End) && (*iv.Requests != 100) {
			t.Errorf("interval %v-%v: requests %v, want 100 or none (an interval at the NaN scrape has no figure)", iv.Start, iv.End, *iv.Requests)
		}
	}
	if !strings.Contains(strings.Join(rep.Warnings, "\n"), ":tensorflow:serving:request_count read NaN or Inf") {
		t.Errorf("warnings %q: want one about the NaN reading", rep.Warnings)
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("the report does not encode: %v", err)
	}
}
