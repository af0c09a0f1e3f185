package servermetrics

import (
	"reflect"
	"strings"
	"testing"
)

// The pages of a server over a run: families that stay, one that counts,
// one that appears and one that goes, one without HELP or TYPE lines.
var parserPages = []string{
	"# HELP build_info Build.\n# TYPE build_info gauge\nbuild_info{version=\"2.18\"} 1\n" +
		"# TYPE :tensorflow:serving:request_count counter\n:tensorflow:serving:request_count{model_name=\"m\",status=\"OK\"} 10\n:tensorflow:serving:request_count{model_name=\"other\",status=\"OK\"} 3\n" +
		"# TYPE gone counter\ngone 4\n" +
		"# TYPE lat histogram\nlat_bucket{model_name=\"m\",le=\"1\"} 1\nlat_bucket{model_name=\"m\",le=\"+Inf\"} 2\nlat_sum{model_name=\"m\"} 3\nlat_count{model_name=\"m\"} 2\n",
	"# HELP build_info Build.\n# TYPE build_info gauge\nbuild_info{version=\"2.18\"} 1\n" +
		"# TYPE :tensorflow:serving:request_count counter\n:tensorflow:serving:request_count{model_name=\"m\",status=\"OK\"} 12\n:tensorflow:serving:request_count{model_name=\"other\",status=\"OK\"} 3\n" +
		"# TYPE new gauge\nnew 7\n" +
		"# TYPE lat histogram\nlat_bucket{model_name=\"m\",le=\"1\"} 1\nlat_bucket{model_name=\"m\",le=\"+Inf\"} 2\nlat_sum{model_name=\"m\"} 3\nlat_count{model_name=\"m\"} 2\n",
	"untyped_a 1\nuntyped_b{x=\"y\"} 2\n",
	"untyped_a 1\nuntyped_b{x=\"y\"} 3\n",
	"# TYPE x counter\nx 1\n# TYPE x counter\nx 1\n", // the same block twice
}

// A parser that reuses the blocks that did not change reads what Parse
// reads, page after page, and does not parse an unchanged block again.
func TestThePageParserReadsWhatParseReadsAndReusesWhatStayed(t *testing.T) {
	for _, f := range []Filter{{}, {Model: "m"}} {
		p := newPageParser(f)
		var prev *Snapshot
		for i, page := range append(parserPages, parserPages...) {
			want, wantErr := Parse(strings.NewReader(page), "text/plain; version=0.0.4", f)
			got, err := p.parse(strings.NewReader(page), "text/plain; version=0.0.4")
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("page %d: error %v, Parse's %v", i, err, wantErr)
			}
			if err != nil {
				continue
			}
			if !reflect.DeepEqual(got.Series, want.Series) {
				t.Errorf("filter %+v, page %d: series\n%+v\nwant\n%+v", f, i, got.Series, want.Series)
			}
			if i == 1 {
				// build_info's block is the same: its series is the one read
				// from page 0; request_count's changed and is read anew.
				if got.Series[`build_info{version="2.18"}`] != prev.Series[`build_info{version="2.18"}`] {
					t.Error("an unchanged block was parsed again")
				}
				key := `:tensorflow:serving:request_count{model_name="m",status="OK"}`
				if got.Series[key] == prev.Series[key] || got.Series[key].Value != 12 {
					t.Errorf("the changed counter %+v was not read anew", got.Series[key])
				}
			}
			prev = got
		}
	}
}

func TestThePageParserFailsAPageThatDoesNotParse(t *testing.T) {
	p := newPageParser(Filter{})
	if _, err := p.parse(strings.NewReader(parserPages[0]), ""); err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(parserPages[0], "gone 4", "gone four", 1)
	_, err := p.parse(strings.NewReader(bad), "")
	_, want := Parse(strings.NewReader(bad), "", Filter{})
	if err == nil || want == nil {
		t.Errorf("a page with a bad value: %v (Parse: %v)", err, want)
	}
}
