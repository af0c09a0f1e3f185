package report

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// serverBlock is a server block with the given request count, mean and
// p50 and p99 estimates in the buckets given.
func serverBlock(requests, mean, outside float64, p50, p99 ServerQuantile) *ServerReport {
	return &ServerReport{
		ServerWindow: ServerWindow{Window: "steady", ServerFigures: ServerFigures{Requests: &requests,
			LatencyMs: &ServerLatency{Family: ":tensorflow:serving:request_latency", Count: requests, Mean: mean, P50: &p50, P99: &p99}}},
		OutsideMs: &outside, Server: "tfserving",
	}
}

func bucketQ(ms, lo, hi float64) ServerQuantile {
	return ServerQuantile{Ms: ms, BucketLowMs: lo, BucketHighMs: &hi}
}

func TestCompareHasTheServersRowsWhenBothRunsScrapedIt(t *testing.T) {
	base, next := crafted(t, 10000, 100, 1000, 0), crafted(t, 10000, 100, 1000, 0)
	base.Server = serverBlock(10000, 3.1, 6.0, bucketQ(2.8, 1.984, 3.570), bucketQ(5.9, 3.570, 6.427))
	next.Server = serverBlock(10004, 4.2, 5.1, bucketQ(3.1, 1.984, 3.570), bucketQ(9.8, 6.427, 11.568))
	c := Compare(base, next, nil)
	rows := map[string]Row{}
	for _, r := range c.Rows {
		rows[r.Metric] = r
	}
	for metric, want := range map[string]string{"server_requests": VerdictDiffers, "server_mean": VerdictWorse,
		"server_p50": VerdictWorse, "server_p99": VerdictWorse, "outside": VerdictBetter} {
		if got := rows[metric].Verdict; got != want {
			t.Errorf("%s: verdict %q, want %q (%+v)", metric, got, want, rows[metric])
		}
	}
	if r := rows["server_p99"]; r.Base != 5.9 || r.New != 9.8 || r.Noisy != "" {
		t.Errorf("server_p99 %+v: from one bucket to the next is a change", r)
	}
	if r := rows["server_p50"]; !strings.Contains(r.Noisy, "both estimates lie in the server's bucket [1.984-3.570] ms") {
		t.Errorf("server_p50 %+v: a change inside one bucket is not said", r)
	}
	var text strings.Builder
	c.Write(&text)
	for _, want := range []string{
		"metric                  base          new       change",
		"server_p99             5.900        9.800       +3.900    +66.1%             worse\n",
		"outside                6.000        5.100       -0.900    -15.0%             better\n",
		"server_requests        10000        10004           +4     +0.0%             differs\n",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("no %q in\n%s", want, text.String())
		}
	}
	var page bytes.Buffer
	if err := WriteCompareHTML(&page, base, next, [2]string{"base.json", "new.json"}, CompareOptions{NoAssets: true}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`data-metric="server_p99" data-verdict="worse"`, `data-metric="outside" data-verdict="better"`, `id="server-rows"`} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("the compare page has no row %s", want)
		}
	}

	// One run without a server block: no server rows, and a note says why.
	next.Server = nil
	c = Compare(base, next, nil)
	for _, r := range c.Rows {
		if strings.HasPrefix(r.Metric, "server_") || r.Metric == "outside" {
			t.Errorf("a server row %s without the new run's server block", r.Metric)
		}
	}
	if !strings.Contains(strings.Join(c.Notes, "\n"), "only the base run scraped the server's metrics") {
		t.Errorf("notes %q", c.Notes)
	}
	// The same run twice: every server row the same.
	base.Server = serverBlock(10000, 3.1, 6.0, bucketQ(2.8, 1.984, 3.570), bucketQ(5.9, 3.570, 6.427))
	for _, r := range Compare(base, base, nil).Rows {
		if r.Verdict != VerdictSame || r.Noisy != "" {
			t.Errorf("self-compare %s: %s %q", r.Metric, r.Verdict, r.Noisy)
		}
	}
}

// The new run scraped a server that counted nothing of this model: its
// server figures are absent, not zero, so no row calls it better.
func TestCompareSaysAnAbsentServerFigureIsAbsent(t *testing.T) {
	base, next := crafted(t, 10000, 100, 1000, 0), crafted(t, 10000, 100, 1000, 0)
	base.Server = serverBlock(10000, 3.121, 6.0, bucketQ(2.8, 1.984, 3.570), bucketQ(5.9, 3.570, 6.427))
	zero := 0.0
	next.Server = &ServerReport{ServerWindow: ServerWindow{Window: "steady", ServerFigures: ServerFigures{Requests: nil,
		LatencyMs: &ServerLatency{Family: ":tensorflow:serving:request_latency"}}},
		Endpoints: []ServerEndpoint{{URL: "http://x/metrics", Scrapes: 3, Steady: &ServerWindow{ServerFigures: ServerFigures{Requests: &zero}}}}}
	c := Compare(base, next, nil)
	var text strings.Builder
	c.Write(&text)
	for _, r := range c.Rows {
		if strings.HasPrefix(r.Metric, "server_") || r.Metric == "outside" {
			if r.Verdict != "" || r.Absent != "new" {
				t.Errorf("%s: verdict %q, absent %q: want no verdict, the new run's figure absent", r.Metric, r.Verdict, r.Absent)
			}
		}
	}
	if !strings.Contains(text.String(), "server_mean            3.121            -            -         -") {
		t.Errorf("server_mean not said absent:\n%s", text.String())
	}
	if !strings.Contains(text.String(), "the new run scraped the server's metrics but has no request figures") {
		t.Errorf("no note says why the new run has no server figures:\n%s", text.String())
	}
}

// A merge of runs that scraped the server keeps each input's server
// block and says why the blocks are not added up.
func TestMergeKeepsEachInputsServerBlockAndSaysSo(t *testing.T) {
	a, b := crafted(t, 1000, 10, 100, 0), crafted(t, 1000, 10, 100, 0)
	a.Server = serverBlock(2000, 3, 1, bucketQ(2.8, 1.984, 3.570), bucketQ(5.9, 3.570, 6.427))
	m, notes, err := Merge([]*Result{a, b}, []string{"a.json", "b.json"})
	if err != nil {
		t.Fatal(err)
	}
	if s := m.MergedFrom[0].Server; s == nil || *s.Requests != 2000 || m.MergedFrom[1].Server != nil {
		t.Errorf("merged_from's server blocks: %+v, %+v", m.MergedFrom[0].Server, m.MergedFrom[1].Server)
	}
	if !strings.Contains(strings.Join(notes, "\n"), "1 of the inputs carry server figures (--metrics): not merged") {
		t.Errorf("no note says the server figures are not merged: %q", notes)
	}
}

// --max takes the server's figures with the client latencies' syntax: a
// rise past the limit regresses, one within passes, a rise inside one
// bucket is noisy, a limited figure a run lacks cannot pass, and
// server_requests takes no limit.
func TestCompareLimitsTheServersFigures(t *testing.T) {
	base, next := crafted(t, 10000, 100, 1000, 0), crafted(t, 10000, 100, 1000, 0)
	base.Server = serverBlock(10000, 3.1, 6.0, bucketQ(2.8, 1.984, 3.570), bucketQ(5.9, 3.570, 6.427))
	next.Server = serverBlock(10004, 4.2, 5.1, bucketQ(3.1, 1.984, 3.570), bucketQ(9.8, 6.427, 11.568))
	limits, err := ParseLimits("server_p99=+10%,server_mean=2ms,server_p50=1%,outside=5%")
	if err != nil {
		t.Fatal(err)
	}
	c := Compare(base, next, limits)
	rows := map[string]Row{}
	for _, r := range c.Rows {
		rows[r.Metric] = r
	}
	for metric, want := range map[string]string{"server_p99": VerdictRegressed, "server_mean": VerdictPass,
		"server_p50": VerdictNoisy, "outside": VerdictPass, "server_requests": VerdictDiffers} {
		if got := rows[metric].Verdict; got != want {
			t.Errorf("%s: verdict %q, want %q (%+v)", metric, got, want, rows[metric])
		}
	}
	if strings.Join(c.Broken, ",") != "server_p99" || strings.Join(c.Noisy, ",") != "server_p50" {
		t.Errorf("broken %v, noisy %v: want server_p99 regressed, server_p50 noisy", c.Broken, c.Noisy)
	}
	var text strings.Builder
	c.Write(&text)
	for _, want := range []string{
		"server_p99             5.900        9.800       +3.900    +66.1%  <= +10%    REGRESSED\n",
		"server_mean            3.100        4.200       +1.100    +35.5%  <= +2ms    pass\n",
		"REGRESSION: server_p99 over the limit",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("no %q in\n%s", want, text.String())
		}
	}

	// The new run without its server block: the limited figure fails.
	next.Server = nil
	c = Compare(base, next, limits[:1])
	if strings.Join(c.Broken, ",") != "server_p99" || !strings.Contains(strings.Join(c.Notes, "\n"), "server_p99 is limited (--max) but the new run has no such server figure") {
		t.Errorf("no server block in the new run: broken %v, notes %q", c.Broken, c.Notes)
	}
	text.Reset()
	c.Write(&text)
	if !strings.Contains(text.String(), "server_p99        5.900            -            -         -  <= +10%    REGRESSED\n") {
		t.Errorf("the limited row says nothing of the missing figure:\n%s", text.String())
	}
	for _, bad := range []struct{ spec, want string }{
		{"server_requests=5%", "server_requests takes no limit"},
		{"server_p99=-10%", "server_p99 regresses when it rises"},
		{"server_p99=3", "a latency limit needs % or ms"},
	} {
		if _, err := ParseLimits(bad.spec); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: error %v, want %q", bad.spec, err, bad.want)
		}
	}
}

// A sweep whose steps scraped the server shows, per step, the server's p99
// and the time outside it, in the text summary and the page's step table;
// a step without figures says "-", one whose p99 is in the +Inf bucket
// "> bound".
func TestSweepTablesShowTheServersP99AndOutsidePerStep(t *testing.T) {
	var steps []StepResult
	for i, level := range []float64{100, 200, 300} {
		r := goldenResult(t)
		r.ThroughputRPS = level
		r.Config = map[string]any{"rate": level}
		steps = append(steps, StepResult{Level: level, Pass: true, Attempts: 1, Result: r})
		if i < 2 {
			r.Server = serverBlock(1000*level, 2+float64(i), 1.5+float64(i), bucketQ(2, 1.984, 3.570), bucketQ(5.9+float64(i), 3.570, 6.427))
		}
	}
	inf := steps[1].Result.Server.LatencyMs.P99
	inf.BucketHighMs, inf.BucketLowMs = nil, 20
	sw := &SweepResult{Version: 2, Kind: "sweep", Loop: "open", SLO: "p99<500ms", Stopped: "the last level", Steps: steps}
	var text strings.Builder
	WriteSweepSummary(&text, sw)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`p99 ms +server p99 ms +outside ms +errors`),
		regexp.MustCompile(`\n  100 .* 5\.900 +1\.500 +1 `),
		regexp.MustCompile(`\n  200 .* > 20\.00 +2\.500 +1 `),
		regexp.MustCompile(`\n  300 .* - +- +1 `),
	} {
		if !want.MatchString(text.String()) {
			t.Errorf("sweep summary has no %s:\n%s", want, text.String())
		}
	}
	var page bytes.Buffer
	if err := writeSweepHTML(&page, sw, ReportOptions{NoAssets: true}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<th class="num" title="the server's own p99`, `<td class="num server-p99">5.900</td><td class="num outside">1.500</td>`,
		`<td class="num server-p99">&gt; 20.00</td>`, `<td class="num server-p99">-</td><td class="num outside">-</td>`} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("the sweep page has no %s", want)
		}
	}

	// Without --metrics, neither table has the columns.
	for _, st := range steps {
		st.Result.Server = nil
	}
	text.Reset()
	WriteSweepSummary(&text, sw)
	page.Reset()
	if err := writeSweepHTML(&page, sw, ReportOptions{NoAssets: true}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text.String(), "server p99") || strings.Contains(page.String(), `class="num server-p99"`) || strings.Contains(page.String(), `title="the server's own p99`) {
		t.Errorf("server columns without a server block:\n%s", text.String())
	}
}

// An outside figure that is no time (the server's mean exceeds the
// client's: a wrong unit) is "-" with no verdict, whether the result
// says it as null or, written before, as a negative number.
func TestCompareGivesANegativeOutsideNoVerdict(t *testing.T) {
	for _, written := range []string{"null", "negative"} {
		base, next := crafted(t, 10000, 100, 1000, 0), crafted(t, 10000, 100, 1000, 0)
		base.Server = serverBlock(10000, 3.1, 6.0, bucketQ(2.8, 1.984, 3.570), bucketQ(5.9, 3.570, 6.427))
		next.LatencyOK = next.Latency
		mean := next.LatencyOK.Mean + 47.9
		next.Server = serverBlock(10000, mean, -47.9, bucketQ(2.8, 1.984, 3.570), bucketQ(5.9, 3.570, 6.427))
		if written == "null" {
			next.Server.OutsideMs = nil
		}
		c := Compare(base, next, nil)
		var row *Row
		for i := range c.Rows {
			if c.Rows[i].Metric == "outside" {
				row = &c.Rows[i]
			}
		}
		if row == nil || row.Absent != "new" || row.Verdict != "" {
			t.Errorf("%s: outside row %+v: want '-' on the new side and no verdict", written, row)
		}
		if !strings.Contains(strings.Join(c.Notes, "\n"), "the new run has no time outside the server: the server's mean") {
			t.Errorf("%s: notes %q do not say why", written, c.Notes)
		}
		var sum strings.Builder
		WriteSummary(&sum, next)
		if !strings.Contains(sum.String(), "outside the server: none: the server's mean") {
			t.Errorf("%s: the summary does not say outside is none:\n%s", written, sum.String())
		}
	}
}
