package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/payloads"
	"github.com/loadprof/loadprof/v2proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// v2RequestOf is the V2 request of payload p for a model whose V2 metadata
// is meta: a native V2 body as it is, a TF Serving body converted through
// the metadata's datatypes and shapes, each checked against the metadata.
// The conversion is the payloads package's, shared with V2 REST.
//
// A model whose metadata lists no inputs (MLServer's often do) takes a
// native V2 body as it is, since it carries its own datatypes and shapes
// (unchecked is then true, for the caller's one warning); a TF Serving body
// needs them from the metadata.
func v2RequestOf(p *payloads.Payload, meta *payloads.V2ModelMetadata) (req *payloads.V2Request, unchecked bool, err error) {
	if len(meta.Inputs) == 0 {
		if p.V2 != nil {
			return p.V2, true, nil
		}
		return nil, false, errors.New("the model's metadata lists no inputs, and a TF Serving body needs their datatypes and shapes to become a V2 request: give a V2 body ({\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]})")
	}
	if p.V2 != nil {
		return p.V2, false, p.V2.CheckV2(meta)
	}
	req, err = p.Request.ToV2(meta)
	return req, false, err
}

// warnUnchecked is the one warning line of a run whose V2 bodies were sent
// without metadata to check them against.
func warnUnchecked(cfg Config, model string) {
	if cfg.Warnings != nil {
		fmt.Fprintf(cfg.Warnings, "warning: model %q's metadata lists no inputs: the V2 bodies of %s are sent as they are, not checked against it\n", model, cfg.DataPath)
	}
}

// warnSignatureNames is the one warning line of a run whose TF Serving
// bodies name a signature, which a V2 target has no use for.
func warnSignatureNames(cfg Config, set *payloads.Set) {
	if cfg.Warnings == nil {
		return
	}
	for i := range set.Payloads {
		if r := set.Payloads[i].Request; r != nil && r.SignatureName != "" {
			fmt.Fprintf(cfg.Warnings, "warning: %s: \"signature_name\" %q: the V2 protocol has no signatures; the field is not sent\n", cfg.DataPath, r.SignatureName)
			return
		}
	}
}

// v2Method is the full name of a GRPCInferenceService method.
func v2Method(name string) string { return "/inference.GRPCInferenceService/" + name }

// prepareV2Calls checks that the server and the model are ready, fetches
// the model's metadata once, and converts every payload into a serialized
// ModelInferRequest with it. Nothing is converted per request.
func prepareV2Calls(ctx context.Context, cfg Config, set *payloads.Set, invoke invokeFunc) (*grpcCalls, error) {
	g := cfg.GRPC
	version := ""
	if g.Version > 0 {
		version = strconv.FormatInt(g.Version, 10)
	}
	meta, err := fetchV2GRPCMetadata(ctx, cfg, version, invoke)
	if err != nil {
		return nil, err
	}
	requests := make([][]byte, set.Len())
	anyUnchecked := false
	for i := range set.Payloads {
		p := &set.Payloads[i]
		v2, unchecked, err := v2RequestOf(p, &meta)
		if err != nil {
			return nil, &InputError{&payloads.Error{Source: p.Source, Msg: fmt.Sprintf("model %q: %v", g.Model, err), Err: err}}
		}
		anyUnchecked = anyUnchecked || unchecked
		req, err := v2.ToModelInferRequest(g.Model, version, payloads.V2ProtoOptions{Raw: g.TensorContent})
		if err != nil {
			return nil, &InputError{&payloads.Error{Source: p.Source, Msg: fmt.Sprintf("model %q: %v", g.Model, err), Err: err}}
		}
		if requests[i], err = proto.Marshal(req); err != nil {
			return nil, err
		}
	}
	if anyUnchecked {
		warnUnchecked(cfg, g.Model)
	}
	warnSignatureNames(cfg, set)
	return &grpcCalls{method: load.ModelInferMethod, requests: requests, check: load.ModelInferResponseCheck(),
		response: "V2 ModelInfer response", service: "V2 GRPCInferenceService"}, nil
}

// fetchV2GRPCMetadata asks the server whether it and the model are ready
// (ServerReady, ModelReady), then for the model's metadata.
func fetchV2GRPCMetadata(ctx context.Context, cfg Config, version string, invoke invokeFunc) (payloads.V2ModelMetadata, error) {
	g := cfg.GRPC
	wait := max(cfg.Timeout, 10*time.Second)
	callCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	ctx = load.WithMetadata(callCtx, cfg.Headers)
	model := fmt.Sprintf("model %q", g.Model)
	if version != "" {
		model += " version " + version
	}
	began := time.Now()
	call := func(method string, req, resp proto.Message) error {
		what := method + " for " + model
		if method == "ServerReady" {
			what = method // the server's readiness, not the model's
		}
		err := invoke(ctx, v2Method(method), req, resp)
		if err == nil {
			return nil
		}
		st := status.Convert(err)
		// The server may give up a moment before our own deadline fires
		// (it counts the grpc-timeout we sent): either way it was the wait.
		switch {
		case callCtx.Err() == context.DeadlineExceeded || (ctx.Err() == nil && time.Since(began) >= wait*9/10):
			return &TargetError{fmt.Errorf("bench.Config.GRPC.Addr %s: %s did not answer within %v (bench.Config.Timeout, at least 10 s): is the model still loading, or is this the right port?", g.Addr, what, wait)}
		case st.Code() == codes.Unavailable || st.Code() == codes.DeadlineExceeded:
			return &TargetError{fmt.Errorf("bench.Config.GRPC.Addr %s: %s", g.Addr, connectionHint(st.Message(), cfg.TLS, true))}
		case st.Code() == codes.Unimplemented:
			return &TargetError{fmt.Errorf("bench.Config.GRPC.Addr %s does not serve the V2 GRPCInferenceService (%s); for TF Serving leave out bench.Config.GRPC.Protocol", g.Addr, st.Message())}
		}
		return &TargetError{fmt.Errorf("bench.Config.GRPC.Addr %s: %s: %s: %s", g.Addr, what, st.Code(), st.Message())}
	}
	var server v2proto.ServerReadyResponse
	if err := call("ServerReady", &v2proto.ServerReadyRequest{}, &server); err != nil {
		return payloads.V2ModelMetadata{}, err
	}
	if !server.GetReady() {
		return payloads.V2ModelMetadata{}, &TargetError{fmt.Errorf("bench.Config.GRPC.Addr %s: the server is not ready (ServerReady answered false)", g.Addr)}
	}
	var ready v2proto.ModelReadyResponse
	if err := call("ModelReady", &v2proto.ModelReadyRequest{Name: g.Model, Version: version}, &ready); err != nil {
		return payloads.V2ModelMetadata{}, err
	}
	if !ready.GetReady() {
		return payloads.V2ModelMetadata{}, &TargetError{fmt.Errorf("bench.Config.GRPC.Addr %s: %s is not ready (ModelReady answered false)", g.Addr, model)}
	}
	var meta v2proto.ModelMetadataResponse
	if err := call("ModelMetadata", &v2proto.ModelMetadataRequest{Name: g.Model, Version: version}, &meta); err != nil {
		return payloads.V2ModelMetadata{}, err
	}
	// Metadata without inputs (an MLServer model whose settings declare
	// none) is for the conversion to judge: a native V2 body needs none.
	out := payloads.V2MetadataFromProto(&meta)
	if err := out.CheckInputs(); err != nil {
		return payloads.V2ModelMetadata{}, &TargetError{fmt.Errorf("bench.Config.GRPC.Addr %s: %s's metadata (ModelMetadata): %v", g.Addr, model, err)}
	}
	return out, nil
}
