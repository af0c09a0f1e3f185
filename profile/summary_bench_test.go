package profile

import (
	"path/filepath"
	"testing"
)

// BenchmarkSummarizeFiles reads a 2 M event GPU trace (about 30 MB) as a
// stream.
func BenchmarkSummarizeFiles(b *testing.B) {
	path := filepath.Join(b.TempDir(), "big.xplane.pb")
	size := writeBigTrace(&testing.T{}, path, 200, 10_000)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SummarizeFiles([]string{path}); err != nil {
			b.Fatal(err)
		}
	}
}
