package report

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestBuildInfoCarriesTheVCSStampOfTheBinary(t *testing.T) {
	info := &debug.BuildInfo{Settings: []debug.BuildSetting{
		{Key: "-buildmode", Value: "exe"}, {Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "07aa080f24a3cdf61ca5b27ef0b8146bf52e0c7a"},
		{Key: "vcs.time", Value: "2026-11-26T01:20:27Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	want := BuildInfo{Version: Version, Commit: "07aa080f24a3cdf61ca5b27ef0b8146bf52e0c7a", CommitTime: "2026-11-26T01:20:27Z", Modified: true, Go: runtime.Version()}
	if got := buildOf(info); got != want {
		t.Fatalf("build %+v, want %+v", got, want)
	}
	if got := buildOf(nil); got != (BuildInfo{Version: Version, Go: runtime.Version()}) {
		t.Fatalf("without build information: %+v", got)
	}
}
