package sim

import (
	"testing"

	"github.com/loadprof/loadprof/payloads"
)

func TestExampleBodyFitsTheSignature(t *testing.T) {
	cases := map[string][]string{
		`{"instances": [[1.5, 1.5, 1.5, 1.5], [1.5, 1.5, 1.5, 1.5]]}`:                         nil,
		`{"instances": ["hello", "hello"]}`:                                                   {"text:string:-1"},
		`{"instances": [{"ids": [1, 1, 1], "mask": true}, {"ids": [1, 1, 1], "mask": true}]}`: {"ids:int64:-1,-1", "mask:bool:-1"},
		`{"inputs": {"x": [[1.5, 1.5]]}}`:                                                     {"x:float:1,2"},
	}
	for want, inputs := range cases {
		sig := DefaultSignature()
		if inputs != nil {
			sig.Inputs = nil
			for _, in := range inputs {
				spec, err := ParseTensorSpec(in)
				if err != nil {
					t.Fatal(err)
				}
				sig.Inputs = append(sig.Inputs, spec)
			}
		}
		body := sig.ExampleBody(2)
		if string(body) != want {
			t.Errorf("%v: %s, want %s", inputs, body, want)
			continue
		}
		// The simulator itself takes it.
		req, err := payloads.ParseBody(body)
		if err == nil {
			_, err = sig.bind(req)
		}
		if err != nil {
			t.Errorf("%v: the simulator refuses %s: %v", inputs, body, err)
		}
	}
}
