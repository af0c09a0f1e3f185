package report

import (
	"strings"
	"testing"
)

func TestTheServerSectionSaysWhyTheCountsDiffer(t *testing.T) {
	for _, c := range []struct {
		server float64
		client int64
		want   string
	}{
		{1000, 1000, "requests: server 1000, client 1000 (steady): the same"},
		{1002, 1000, "requests: server 1002, client 1000 (steady): +2, requests in flight at the phase's edges"},
		{1500, 1000, "the server counted 500 more; another client is loading it"},
		{0, 1000, "the server counted 1000 fewer; the wrong model"},
	} {
		server := c.server
		r := &Result{Requests: c.client, LatencyOK: Stats{Count: c.client, Mean: 9}, Server: &ServerReport{
			ServerWindow: ServerWindow{Window: "steady", ServerFigures: ServerFigures{Requests: &server}},
			Server:       "tfserving", Endpoints: []ServerEndpoint{{URL: "http://h/metrics", Scrapes: 5, FailedScrapes: 2}},
		}}
		var b strings.Builder
		WriteSummary(&b, r)
		if !strings.Contains(b.String(), c.want) {
			t.Errorf("server %v, client %d: no %q in\n%s", c.server, c.client, c.want, b.String())
		}
		if !strings.Contains(b.String(), "warning: http://h/metrics: 2 of 5 scrapes failed; the load's results stand") {
			t.Errorf("no line for the failed scrapes:\n%s", b.String())
		}
	}
}
