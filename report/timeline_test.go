package report

import (
	"strings"
	"testing"

	"github.com/loadprof/loadprof/profile"
)

func TestHTMLReportShowsTheClockOffsetAndTheLatencySplit(t *testing.T) {
	r := goldenResult(t)
	r.Profile.Timeline = &profile.Timeline{Placement: profile.PlacedAtServerStart,
		Clock: &profile.ClockEstimate{Method: profile.OffsetFromRequests, OffsetMs: 10800000.25, MinMs: 10799999.9, MaxMs: 10800000.6},
		Split: &profile.LatencySplit{ClientRequests: 200, ServerRequests: 190, Matched: 188,
			ClientMs: profile.Percentiles{P50: 4.5}, ServerMs: profile.Percentiles{P50: 1.75}, OutsideMs: profile.Percentiles{P50: 2.75}, Reliable: true}}
	var buf strings.Builder
	if err := WriteHTML(&buf, []*Result{r}, []string{"a.json"}, ReportOptions{NoAssets: true}); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	// In words, not the result's enum values (review found "server_start"
	// and "(request_events)" on the page).
	for _, want := range []string{"The client plane is on the server&#39;s timeline", "Clock offset (server &minus; client) &#43;10800000.250 ms, within 10799999.900..10800000.600 ms, from the server&#39;s request events",
		"188 of 200 window requests matched", "<td>inside the server's event</td><td>1.750</td>", "<td>outside it, once sent (network, tunnel, queueing)</td><td>2.750</td>"} {
		if !strings.Contains(html, want) {
			t.Fatalf("the report lacks %q", want)
		}
	}
	if strings.Contains(html, "server_start") || strings.Contains(html, "request_events)") || strings.Contains(html, "not reliable") {
		t.Fatalf("the report shows enum values or calls a reliable split unreliable")
	}
}
