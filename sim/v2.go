package sim

// The simulator's Open Inference Protocol (KServe V2) REST routes, beside
// TF Serving's: the same model (its signature as V2 metadata), the same
// latency, stalls, failures and faults.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/loadprof/loadprof/payloads"
	"github.com/valyala/fasthttp"
)

// v2Datatypes maps the signature's TF dtypes to V2 datatypes.
var v2Datatypes = map[string]string{
	"DT_FLOAT": "FP32", "DT_DOUBLE": "FP64", "DT_HALF": "FP16", "DT_BFLOAT16": "BF16",
	"DT_INT8": "INT8", "DT_INT16": "INT16", "DT_INT32": "INT32", "DT_INT64": "INT64",
	"DT_UINT8": "UINT8", "DT_UINT16": "UINT16", "DT_UINT32": "UINT32", "DT_UINT64": "UINT64",
	"DT_STRING": "BYTES", "DT_BOOL": "BOOL",
}

// v2Platform is the platform the simulated model reports in its V2
// metadata.
const v2Platform = "loadprof-sim"

// v2Metadata is the simulated model's V2 metadata, which its REST and gRPC
// V2 routes share: its signature's inputs and outputs with V2 datatypes.
// A tensor of any shape (a nil TensorSpec.Shape) has a nil Shape here,
// which the REST route writes as [-1].
func (s *Server) v2Metadata() payloads.V2ModelMetadata {
	specs := func(in []TensorSpec) []payloads.V2TensorMetadata {
		out := make([]payloads.V2TensorMetadata, len(in))
		for i, sp := range in {
			out[i] = payloads.V2TensorMetadata{Name: sp.Name, Datatype: v2Datatypes[sp.DType], Shape: sp.Shape}
		}
		return out
	}
	return payloads.V2ModelMetadata{
		Name:     s.cfg.Model,
		Versions: []string{strconv.FormatInt(s.cfg.Version, 10)},
		Platform: v2Platform,
		Inputs:   specs(s.cfg.Signature.Inputs),
		Outputs:  specs(s.cfg.Signature.Outputs),
	}
}

// V2InferURL is the V2 REST infer URL of the simulated model.
func (s *Server) V2InferURL() string {
	return strings.TrimSuffix(s.PredictURL(), "/v1/models/"+s.cfg.Model+":predict") + "/v2/models/" + s.cfg.Model + "/infer"
}

// v2Path is path from its first /v2 segment on: the V2 routes are served
// under any prefix before it, such as the /seldon/NAMESPACE/MODEL a
// Seldon Core gateway routes by, as load.ParseV2InferPath allows in a
// target's URL. ok is false for a path without a /v2 segment, and for TF
// Serving's /v1/ routes (a model may be named v2).
func v2Path(path string) (string, bool) {
	if strings.HasPrefix(path, "/v1/") {
		return "", false
	}
	for from := 0; ; {
		i := strings.Index(path[from:], "/v2")
		if i < 0 {
			return "", false
		}
		i += from
		if end := i + len("/v2"); end == len(path) || path[end] == '/' {
			return path[i:], true
		}
		from = i + len("/v2")
	}
}

// v2Route is a parsed /v2/models/... path.
type v2Route struct {
	model, version string
	verb           string // "" (metadata), "ready" or "infer"
}

func parseV2Route(path string) (v2Route, bool) {
	rest, ok := strings.CutPrefix(path, "/v2/models/")
	if !ok {
		return v2Route{}, false
	}
	parts := strings.Split(rest, "/")
	var r v2Route
	if n := len(parts); n > 1 && (parts[n-1] == "ready" || parts[n-1] == "infer") {
		r.verb = parts[n-1]
		parts = parts[:n-1]
	}
	switch {
	case len(parts) == 1 && parts[0] != "":
		r.model = parts[0]
	case len(parts) == 3 && parts[0] != "" && parts[1] == "versions" && parts[2] != "":
		r.model, r.version = parts[0], parts[2]
	default:
		return v2Route{}, false
	}
	return r, true
}

func (s *Server) handleV2(ctx *fasthttp.RequestCtx, path string) {
	switch path {
	case "/v2/health/live", "/v2/health/ready":
		if !ctx.IsGet() {
			break
		}
		ctx.SetContentType("application/json")
		if path == "/v2/health/live" {
			ctx.SetBodyString(`{"live":true}`)
		} else {
			ctx.SetBodyString(`{"ready":true}`)
		}
		return
	case "/v2":
		if !ctx.IsGet() {
			break
		}
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"name":"` + v2Platform + `","version":"1","extensions":["binary_tensor_data"]}`)
		return
	default:
		r, ok := parseV2Route(path)
		if !ok {
			writeError(ctx, fasthttp.StatusNotFound, fmt.Sprintf("Not found: %s %s", ctx.Method(), path))
			return
		}
		if r.model != s.cfg.Model || (r.version != "" && r.version != strconv.FormatInt(s.cfg.Version, 10)) {
			name := r.model
			if r.version != "" {
				name += " version " + r.version
			}
			writeError(ctx, fasthttp.StatusNotFound, fmt.Sprintf("Model %s not found", name))
			return
		}
		switch {
		case r.verb == "" && ctx.IsGet():
			s.v2MetadataRoute(ctx)
			return
		case r.verb == "ready" && ctx.IsGet():
			ctx.SetContentType("application/json")
			body, _ := json.Marshal(map[string]any{"name": s.cfg.Model, "ready": true})
			ctx.SetBody(body)
			return
		case r.verb == "infer" && ctx.IsPost():
			s.networkDelay()
			start := time.Now()
			s.v2Infer(ctx)
			s.metrics.request(s.cfg.Model, "predict", "REST", restCode(ctx.Response.StatusCode()), time.Since(start))
			return
		}
	}
	writeError(ctx, fasthttp.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s", ctx.Method(), path))
}

type v2TensorJSON struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

func (s *Server) v2MetadataRoute(ctx *fasthttp.RequestCtx) {
	meta := s.v2Metadata()
	tensors := func(in []payloads.V2TensorMetadata) []v2TensorJSON {
		out := make([]v2TensorJSON, len(in))
		for i, t := range in {
			out[i] = v2TensorJSON{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape}
			if t.Shape == nil {
				out[i].Shape = []int64{-1}
			}
		}
		return out
	}
	body, _ := json.Marshal(map[string]any{
		"name": meta.Name, "versions": meta.Versions, "platform": meta.Platform,
		"inputs": tensors(meta.Inputs), "outputs": tensors(meta.Outputs),
	})
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

// v2Infer answers an infer call: the request (JSON, or the binary tensor
// extension when Inference-Header-Content-Length is there) is checked
// against the metadata as a V2 server would, and the one output is each
// example's sum as predict computes it, in binary when asked for.
func (s *Server) v2Infer(ctx *fasthttp.RequestCtx) {
	arrived := time.Now()
	s.noteArrival(arrived)
	if want := s.cfg.Authorization; want != "" && string(ctx.Request.Header.Peek("Authorization")) != want {
		writeError(ctx, fasthttp.StatusUnauthorized, "missing or wrong Authorization header")
		return
	}
	var req *payloads.V2Request
	var err error
	if h := ctx.Request.Header.Peek(payloads.V2BinaryHeader); h != nil {
		n, convErr := strconv.Atoi(string(h))
		if convErr != nil {
			writeError(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("%s %q is not a number", payloads.V2BinaryHeader, h))
			return
		}
		req, err = payloads.ParseV2Binary(ctx.PostBody(), n)
	} else {
		req, err = payloads.ParseV2Body(ctx.PostBody())
	}
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "invalid infer request: "+err.Error())
		return
	}
	meta := s.v2Metadata()
	if err := req.CheckV2(&meta); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	out, err := predictV2(req.Inputs, len(ctx.PostBody()))
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	output := meta.Outputs[0]
	binaryOut := req.Parameters["binary_data_output"] == true
	for _, o := range req.Outputs {
		if o.Name == output.Name && o.Binary {
			binaryOut = true
		}
	}
	if !s.serveREST(ctx, arrived) {
		return
	}
	s.writeV2Answer(ctx, req.ID, output.Name, out, binaryOut)
}

// writeV2Answer writes the one FP32 output, as JSON data or as a binary
// tensor after the JSON header.
func (s *Server) writeV2Answer(ctx *fasthttp.RequestCtx, id, name string, out []float64, binaryOut bool) {
	buf := make([]byte, 0, 128+16*len(out))
	buf = append(buf, `{"model_name":`...)
	buf = strconv.AppendQuote(buf, s.cfg.Model)
	buf = append(buf, `,"model_version":"`...)
	buf = strconv.AppendInt(buf, s.cfg.Version, 10)
	buf = append(buf, '"')
	if id != "" {
		idJSON, _ := json.Marshal(id)
		buf = append(buf, `,"id":`...)
		buf = append(buf, idJSON...)
	}
	buf = append(buf, `,"outputs":[{"name":`...)
	buf = strconv.AppendQuote(buf, name)
	buf = append(buf, `,"datatype":"FP32","shape":[`...)
	buf = strconv.AppendInt(buf, int64(len(out)), 10)
	buf = append(buf, ']')
	if binaryOut {
		buf = append(buf, `,"parameters":{"binary_data_size":`...)
		buf = strconv.AppendInt(buf, int64(4*len(out)), 10)
		buf = append(buf, "}}]"...)
	} else {
		buf = append(buf, `,"data":[`...)
		for i, v := range out {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendFloat(buf, v)
		}
		buf = append(buf, "]}]"...)
	}
	if pad := s.cfg.Faults.ResponseBytes - len(buf) - 20; pad > 0 {
		buf = append(buf, `,"padding":"`...)
		buf = append(buf, strings.Repeat("x", pad)...)
		buf = append(buf, '"')
	}
	buf = append(buf, '}')
	if !binaryOut {
		ctx.SetContentType("application/json")
		ctx.SetBody(buf)
		return
	}
	header := len(buf)
	for _, v := range out {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(float32(v)))
	}
	ctx.SetContentType("application/octet-stream")
	ctx.Response.Header.Set(payloads.V2BinaryHeader, strconv.Itoa(header))
	ctx.SetBody(buf)
}

// predictV2 is predict for V2 inputs: for each example (the first
// dimension), the sum of its numbers, byte lengths of its strings and true
// booleans, over all inputs.
func predictV2(inputs []payloads.V2Input, requestBytes int) ([]float64, error) {
	batch := int64(-1)
	for _, in := range inputs {
		n := int64(1)
		if len(in.Shape) > 0 {
			n = in.Shape[0]
		}
		if batch >= 0 && n != batch {
			return nil, fmt.Errorf("inputs disagree on the batch size: %d and %d", batch, n)
		}
		batch = n
	}
	if err := checkBatch(batch, requestBytes); err != nil {
		return nil, err
	}
	out := make([]float64, batch)
	if batch == 0 {
		return out, nil
	}
	for i := range inputs {
		in := &inputs[i]
		var values []float64
		switch {
		case in.Floats != nil:
			values = in.Floats
		case in.Ints != nil:
			for _, v := range in.Ints {
				values = append(values, float64(v))
			}
		case in.Uints != nil:
			for _, v := range in.Uints {
				values = append(values, float64(v))
			}
		case in.Bytes != nil:
			for _, v := range in.Bytes {
				values = append(values, float64(len(v)))
			}
		case in.Bools != nil:
			for _, v := range in.Bools {
				values = append(values, float64(boolInt(v)))
			}
		}
		per := int64(len(values)) / batch
		if per == 0 {
			continue
		}
		for j, v := range values {
			out[int64(j)/per] += v
		}
	}
	return out, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
