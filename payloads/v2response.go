package payloads

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// CheckV2InferResponse checks that body is a V2 infer response: a JSON
// object whose "outputs" is a list of tensors, each with a name, a V2
// datatype, a shape and its "data" or, in the binary tensor extension, a
// "binary_data_size" parameter. headerLen is the Inference-Header-Content-
// Length header's value, or -1 without one; with one, the JSON is the
// body's first headerLen bytes and the binary sizes add up to the rest.
// The preflight uses it to tell a V2 server's answer from anything else a
// 200 may carry.
func CheckV2InferResponse(body []byte, headerLen int) error {
	header := body
	if headerLen >= 0 {
		if headerLen > len(body) {
			return fmt.Errorf("%s %d is longer than the %d-byte body", V2BinaryHeader, headerLen, len(body))
		}
		header = body[:headerLen]
	}
	var doc struct {
		Outputs *[]struct {
			Name       string                     `json:"name"`
			Datatype   string                     `json:"datatype"`
			Shape      *[]int64                   `json:"shape"`
			Data       json.RawMessage            `json:"data"`
			Parameters map[string]json.RawMessage `json:"parameters"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(header, &doc); err != nil {
		return fmt.Errorf("not JSON with \"outputs\": %v", err)
	}
	if doc.Outputs == nil {
		return errors.New(`no "outputs" list`)
	}
	if len(*doc.Outputs) == 0 {
		// As over gRPC: an answer without a tensor is no inference.
		return errors.New(`an empty "outputs" list: no output tensor`)
	}
	binary := 0
	for i, o := range *doc.Outputs {
		switch {
		case o.Name == "":
			return fmt.Errorf("output %d has no name", i)
		case !IsV2Datatype(o.Datatype):
			return fmt.Errorf("output %q has datatype %q, which is not a V2 datatype", o.Name, o.Datatype)
		case o.Shape == nil:
			return fmt.Errorf("output %q has no shape", o.Name)
		}
		if raw, ok := o.Parameters["binary_data_size"]; ok {
			var n int
			if json.Unmarshal(raw, &n) != nil || n < 0 {
				return fmt.Errorf("output %q: binary_data_size %s is not a size", o.Name, raw)
			}
			if headerLen < 0 {
				return fmt.Errorf("output %q has a binary_data_size, but the answer has no %s header", o.Name, V2BinaryHeader)
			}
			binary += n
			continue
		}
		if d := bytes.TrimSpace(o.Data); len(d) == 0 || d[0] != '[' {
			return fmt.Errorf("output %q has neither a \"data\" list nor a binary_data_size", o.Name)
		}
	}
	if headerLen >= 0 && binary != len(body)-headerLen {
		return fmt.Errorf("the outputs' binary_data_size add up to %d bytes, %d follow the %d-byte JSON header", binary, len(body)-headerLen, headerLen)
	}
	return nil
}
