package profile

import (
	"bytes"
	"testing"
)

func TestTopOfANegativeCountIsEmpty(t *testing.T) {
	s := Summary{Ops: []Op{{Name: "a"}, {Name: "b"}}}
	for n, want := range map[int]int{-1: 0, 0: 0, 1: 1, 5: 2} {
		if got := len(s.Top(n)); got != want {
			t.Errorf("Top(%d): %d ops, want %d", n, got, want)
		}
	}
	var buf bytes.Buffer
	s.Write(&buf, -1) // must not panic
}
