package bench

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/payloads"
	"github.com/loadprof/loadprof/report"
)

// V2 (Open Inference Protocol) REST targets: a URL whose path is
// /v2/models/NAME[/versions/V]/infer. Before any load the server's and
// the model's readiness are asked (GET /v2/health/ready, the model's
// /ready) and its metadata read; every payload, a native V2 body or a TF
// Serving body, is checked or converted with the metadata and rendered
// once, as JSON or in the binary tensor extension (bench.Config.V2Binary).

// prepareV2REST builds the transport of a V2 REST target.
func prepareV2REST(ctx context.Context, cfg Config, set *payloads.Set, tlsConfig *tls.Config, route load.V2Route) (*target, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, &InputError{err}
	}
	getter := newV2Getter(cfg, tlsConfig, u, route)
	meta, err := fetchV2Metadata(ctx, getter, route)
	if err != nil {
		return nil, interruptedOr(ctx, err)
	}
	bodies := make([][]byte, set.Len())
	var headers [][]load.Header
	if cfg.V2Binary {
		headers = make([][]load.Header, set.Len())
	}
	anyUnchecked := false
	for i := range set.Payloads {
		p := &set.Payloads[i]
		req, unchecked, err := v2RequestOf(p, meta)
		anyUnchecked = anyUnchecked || unchecked
		if err == nil {
			if cfg.V2Binary {
				var n int
				bodies[i], n, err = req.RenderBinary()
				headers[i] = []load.Header{{Key: payloads.V2BinaryHeader, Value: strconv.Itoa(n)}}
			} else if bodies[i], err = req.RenderJSON(); err != nil {
				err = fmt.Errorf("%w; bench.Config.V2Binary sends it in the binary tensor extension", err)
			}
		}
		if err != nil {
			return nil, &InputError{&payloads.Error{Source: p.Source, Msg: fmt.Sprintf("model %q: %v", route.Model, err), Err: err}}
		}
	}
	if anyUnchecked {
		warnUnchecked(cfg, route.Model)
	}
	warnSignatureNames(cfg, set)
	contentType := "application/json"
	if cfg.V2Binary {
		contentType = "application/octet-stream"
	}
	rest, err := load.NewREST(load.RESTConfig{
		URL: cfg.URL, Headers: cfg.Headers, Bodies: bodies, BodyHeaders: headers, ContentType: contentType,
		Timeout: cfg.Timeout, MaxResponseBytes: cfg.MaxResponseBytes, TLS: tlsConfig, Engine: cfg.RESTEngine,
		CheckProbeAnswer: checkV2Answer,
	})
	if err != nil {
		return nil, &InputError{err}
	}
	name := RedactURL(cfg.URL)
	protocol := report.ProtocolV2
	if cfg.V2Binary {
		protocol = report.ProtocolV2Binary
	}
	return &target{name: name, kind: "rest", protocol: protocol, tr: rest, engine: rest.Engine(), preflight: func(ctx context.Context) error {
		var serverError func(context.Context, int) error
		if cfg.V2Binary {
			serverError = func(ctx context.Context, code int) error { return binaryRefused(ctx, getter, code) }
		}
		return preflightREST(ctx, rest, set, name, serverError)
	}}, nil
}

// checkV2Answer checks the preflight's answer as a V2 infer response, in
// JSON or in the binary tensor extension.
func checkV2Answer(body []byte, header func(string) []byte) error {
	headerLen := -1
	if h := header(payloads.V2BinaryHeader); len(h) > 0 {
		n, err := strconv.Atoi(string(h))
		if err != nil || n < 0 {
			return fmt.Errorf("%s %q is not a length", payloads.V2BinaryHeader, h)
		}
		headerLen = n
	}
	return payloads.CheckV2InferResponse(body, headerLen)
}

// binaryRefused says why a binary request failed with a server error when
// the server's metadata (GET /v2) does not list the binary tensor
// extension; nil when it does, or does not say: then the failure is the
// load's to count.
func binaryRefused(ctx context.Context, g *v2Getter, code int) error {
	status, body, err := g.get(ctx, g.route.Server(""))
	if err != nil || status != http.StatusOK {
		return nil
	}
	var doc struct {
		Extensions *[]string `json:"extensions"`
	}
	if json.Unmarshal(body, &doc) != nil || doc.Extensions == nil || slices.Contains(*doc.Extensions, "binary_tensor_data") {
		return nil
	}
	return &TargetError{fmt.Errorf("%s answered %d to a request in the binary tensor extension, and its GET /v2 extensions %q do not include binary_tensor_data: run without bench.Config.V2Binary", g.name, code, *doc.Extensions)}
}

// v2Getter makes the V2 REST GETs of the preflight (readiness, metadata,
// server metadata) with the run's headers.
type v2Getter struct {
	client  *http.Client
	origin  string
	name    string // the target's URL, redacted
	headers []load.Header
	route   load.V2Route
}

func newV2Getter(cfg Config, tlsConfig *tls.Config, u *url.URL, route load.V2Route) *v2Getter {
	wait := max(cfg.Timeout, 10*time.Second)
	return &v2Getter{
		client:  &http.Client{Timeout: wait, Transport: &http.Transport{TLSClientConfig: tlsConfig, Proxy: nil}},
		origin:  u.Scheme + "://" + u.Host,
		name:    RedactURL(cfg.URL),
		headers: cfg.Headers,
		route:   route,
	}
}

func (g *v2Getter) get(ctx context.Context, path string) (int, []byte, error) {
	defer g.client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.origin+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("User-Agent", "loadprof")
	for _, h := range g.headers {
		if strings.EqualFold(h.Key, "Host") {
			req.Host = h.Value // net/http ignores a Host in req.Header
			continue
		}
		req.Header.Set(h.Key, h.Value)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) && uerr.Timeout() && ctx.Err() == nil {
			return 0, nil, &TargetError{fmt.Errorf("%s: GET %s did not answer within %v (bench.Config.Timeout, at least 10 s): is the model still loading, or is this the right port?", g.name, path, g.client.Timeout)}
		}
		if hint := g.sniff(ctx, path); hint != "" {
			return 0, nil, &TargetError{fmt.Errorf("%s: %s", g.name, hint)}
		}
		if uerr != nil {
			err = uerr.Err
		}
		return 0, nil, &TargetError{fmt.Errorf("%s: GET %s: %v", g.name, path, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, nil, &TargetError{fmt.Errorf("%s: GET %s: %v", g.name, path, err)}
	}
	return resp.StatusCode, body, nil
}

// sniff says what kind of server answered a GET that failed, when that
// explains it better than the error (Go's client words an HTTP/2 answer
// as an unsolicited response): "" when nothing can be learnt.
func (g *v2Getter) sniff(ctx context.Context, path string) string {
	u, err := url.Parse(g.origin)
	if err != nil || u.Scheme != "http" {
		return "" // https: the handshake error says enough
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return ""
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: loadprof\r\n\r\n", path, u.Host)
	buf := make([]byte, 64)
	n := 0
	for n < 9 {
		m, err := conn.Read(buf[n:])
		n += m
		if err != nil {
			break
		}
	}
	hint := load.DescribeAnswer(buf[:n])
	if strings.Contains(hint, "HTTP/2") {
		return "this port speaks HTTP/2, as gRPC does (Triton's and KServe's gRPC port is 8001 or 8081, REST 8000 or 8080): for V2 gRPC use bench.Config.GRPC.Addr HOST:PORT bench.Config.GRPC.Protocol v2 bench.Config.GRPC.Model NAME"
	}
	return hint
}

// fetchV2Metadata asks whether the server and the model are ready and
// reads the model's metadata.
func fetchV2Metadata(ctx context.Context, g *v2Getter, route load.V2Route) (*payloads.V2ModelMetadata, error) {
	get := func(path string) (int, []byte, error) { return g.get(ctx, path) }
	name := g.name
	for _, check := range []struct{ path, what string }{
		{route.Server("/health/ready"), "the server is not ready"},
		{route.Base() + "/ready", fmt.Sprintf("model %q is not ready", route.Model)},
	} {
		code, body, err := get(check.path)
		if err != nil {
			return nil, err
		}
		if code == http.StatusNotFound && check.path == route.Server("/health/ready") {
			return nil, &TargetError{fmt.Errorf("%s: the server does not serve the V2 REST protocol (GET %s answered 404); a TF Serving server's route is %s%s/v1/models/%s:predict", name, check.path, g.origin, route.Prefix, route.Model)}
		}
		if code != http.StatusOK {
			return nil, &TargetError{fmt.Errorf("%s: %s (GET %s answered %d%s)", name, check.what, check.path, code, v2ErrorSuffix(body))}
		}
		// A 200 may still say no (KServe's and MLServer's readiness routes
		// answer {"ready": false}), as gRPC's ready field does.
		var ready struct {
			Ready *bool `json:"ready"`
		}
		if json.Unmarshal(body, &ready) == nil && ready.Ready != nil && !*ready.Ready {
			return nil, &TargetError{fmt.Errorf("%s: %s (GET %s answered 200 with \"ready\": false)", name, check.what, check.path)}
		}
	}
	code, body, err := get(route.Base())
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, &TargetError{fmt.Errorf("%s: model %q's metadata: GET %s answered %d%s", name, route.Model, route.Base(), code, v2ErrorSuffix(body))}
	}
	meta, err := parseV2Metadata(body)
	if err != nil {
		return nil, &TargetError{fmt.Errorf("%s: model %q's metadata (GET %s): %v", name, route.Model, route.Base(), err)}
	}
	return meta, nil
}

// v2ErrorSuffix is ": " and a V2 error answer's text, or the start of a
// body that is not one.
func v2ErrorSuffix(body []byte) string {
	var doc struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &doc) == nil && doc.Error != "" {
		return ": " + doc.Error
	}
	text := strings.Join(strings.Fields(string(body)), " ")
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	if text == "" {
		return ""
	}
	return ": " + text
}

// parseV2Metadata reads a model metadata answer: name, versions,
// platform, and inputs and outputs with their datatypes and shapes.
func parseV2Metadata(body []byte) (*payloads.V2ModelMetadata, error) {
	type tensor struct {
		Name     string  `json:"name"`
		Datatype string  `json:"datatype"`
		Shape    []int64 `json:"shape"`
	}
	var doc struct {
		Name     string   `json:"name"`
		Versions []string `json:"versions"`
		Platform string   `json:"platform"`
		Inputs   []tensor `json:"inputs"`
		Outputs  []tensor `json:"outputs"`
		Error    string   `json:"error"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("not V2 model metadata: %v", err)
	}
	if doc.Error != "" && doc.Name == "" && len(doc.Inputs) == 0 {
		// Some servers say "not found" with a 200: not a model without
		// inputs.
		return nil, fmt.Errorf("the server answered with an error: %s", doc.Error)
	}
	meta := &payloads.V2ModelMetadata{Name: doc.Name, Versions: doc.Versions, Platform: doc.Platform}
	for _, t := range doc.Inputs {
		meta.Inputs = append(meta.Inputs, payloads.V2TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape})
	}
	if err := meta.CheckInputs(); err != nil {
		return nil, err
	}
	for _, t := range doc.Outputs {
		meta.Outputs = append(meta.Outputs, payloads.V2TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: t.Shape})
	}
	return meta, nil
}

// statusError is a preflight's refusal by HTTP status, for the hints that
// depend on the status.
type statusError struct {
	code int
	err  error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// v1PredictPath is a TF Serving predict path:
// [PREFIX]/v1/models/NAME[/versions/V | /labels/L]:predict.
var v1PredictPath = regexp.MustCompile(`^(.*)/v1/models/([^/:]+)(?:/versions/([0-9]+)|/labels/[^/:]+)?:predict$`)

// withV2Hint adds to a TF Serving target's preflight refusal with 404 the
// V2 infer URL to use, when the server answers GET [PREFIX]/v2 with V2
// server metadata: a Triton, KServe or MLServer port given a /v1/ URL.
func withV2Hint(ctx context.Context, err error, cfg Config, tlsConfig *tls.Config) error {
	var se *statusError
	if !errors.As(err, &se) || se.code != http.StatusNotFound {
		return err
	}
	u, perr := url.Parse(cfg.URL)
	if perr != nil {
		return err
	}
	m := v1PredictPath.FindStringSubmatch(u.Path)
	if m == nil {
		return err
	}
	route := load.V2Route{Prefix: m[1], Model: m[2], Version: m[3]}
	// A cheap question: a server that does not answer it at once is not
	// worth the wait before the refusal it would only explain.
	askCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	g := newV2Getter(cfg, tlsConfig, u, route)
	code, body, gerr := g.get(askCtx, route.Server(""))
	if gerr != nil || code != http.StatusOK || !isV2ServerMetadata(body) {
		return err
	}
	return &TargetError{fmt.Errorf("%w; this server speaks the Open Inference Protocol (V2): use %s/infer", se, route.Base())}
}

// isV2ServerMetadata reports whether body is a V2 server metadata answer:
// an object with a name, a version and a list of extensions.
func isV2ServerMetadata(body []byte) bool {
	var doc struct {
		Name       *string   `json:"name"`
		Version    *string   `json:"version"`
		Extensions *[]string `json:"extensions"`
	}
	return json.Unmarshal(body, &doc) == nil && doc.Name != nil && doc.Version != nil && doc.Extensions != nil
}
