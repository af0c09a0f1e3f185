package load

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// Header is one extra request header (or gRPC metadata entry).
type Header struct {
	Key, Value string
}

// ParseHeader reads "Key: value" as given to -H.
func ParseHeader(s string) (Header, error) {
	k, v, ok := strings.Cut(s, ":")
	k = strings.TrimSpace(k)
	if !ok || k == "" || strings.ContainsAny(k, " \t\r\n") {
		return Header{}, fmt.Errorf("header %q is not of the form \"Key: value\"", s)
	}
	return Header{Key: k, Value: strings.TrimSpace(v)}, nil
}

// RESTConfig describes a REST target.
type RESTConfig struct {
	URL              string
	Method           string // POST when empty
	Headers          []Header
	Bodies           [][]byte // indexed by payload number
	Timeout          time.Duration
	MaxConns         int // connections kept open at most; one request in flight on each
	MaxResponseBytes int // larger responses fail as TooLarge; 0 means 64 MiB
	TLS              *tls.Config
}

// REST is a Transport for HTTP/1.1 POST requests over a keep-alive
// connection pool (fasthttp).
type REST struct {
	cfg    RESTConfig
	client *fasthttp.HostClient
}

// NewREST checks cfg and prepares the connection pool. No connection is
// made until the first request.
func NewREST(cfg RESTConfig) (*REST, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("--url %q: %v", cfg.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("--url %q: scheme must be http or https", cfg.URL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("--url %q: no host", cfg.URL)
	}
	if len(cfg.Bodies) == 0 {
		return nil, errors.New("rest: no payloads")
	}
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	if cfg.Method == "" {
		cfg.Method = fasthttp.MethodPost
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 1
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = 64 << 20
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	client := &fasthttp.HostClient{
		Addr:                      addr,
		IsTLS:                     u.Scheme == "https",
		TLSConfig:                 cfg.TLS,
		MaxConns:                  cfg.MaxConns,
		MaxResponseBodySize:       cfg.MaxResponseBytes,
		MaxIdemponentCallAttempts: 1, // a retried request would hide its failure and double its latency
		RetryIf:                   func(*fasthttp.Request) bool { return false },
		NoDefaultUserAgentHeader:  true,
		DisablePathNormalizing:    true,
		MaxConnWaitTimeout:        cfg.Timeout,
		ReadBufferSize:            16 << 10,
	}
	return &REST{cfg: cfg, client: client}, nil
}

// NewSender returns a Sender with its own request and response buffers.
func (r *REST) NewSender() Sender {
	req := fasthttp.AcquireRequest()
	req.SetRequestURI(r.cfg.URL)
	req.Header.SetMethod(r.cfg.Method)
	req.Header.SetContentType("application/json")
	req.Header.Set("User-Agent", "loadprof")
	for _, h := range r.cfg.Headers {
		req.Header.Set(h.Key, h.Value)
	}
	return &restSender{rest: r, req: req, resp: fasthttp.AcquireResponse()}
}

// Close drops idle connections.
func (r *REST) Close() { r.client.CloseIdleConnections() }

type restSender struct {
	rest *REST
	req  *fasthttp.Request
	resp *fasthttp.Response
}

func (s *restSender) Send(payload int) Outcome {
	s.req.SetBodyRaw(s.rest.cfg.Bodies[payload])
	err := s.rest.client.DoTimeout(s.req, s.resp, s.rest.cfg.Timeout)
	if err != nil {
		return restError(err)
	}
	code := s.resp.StatusCode()
	s.resp.ResetBody()
	if code < 200 || code > 299 {
		return Outcome{Class: HTTPStatus, Code: code}
	}
	return Outcome{Class: OK, Code: code}
}

func restError(err error) Outcome {
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return Outcome{Class: TooLarge, Err: err}
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return Outcome{Class: Timeout, Err: fmt.Errorf("no free connection within the timeout: %w", err)}
	}
	return Outcome{Class: ClassifyNetError(err), Err: err}
}

// Probe sends payload once and returns its outcome and up to 512 bytes of
// the response body, so that a failing target can be explained before the
// load starts.
func (r *REST) Probe(payload int) (Outcome, string) {
	s := r.NewSender().(*restSender)
	defer fasthttp.ReleaseRequest(s.req)
	defer fasthttp.ReleaseResponse(s.resp)
	s.req.SetBodyRaw(r.cfg.Bodies[payload])
	if err := r.client.DoTimeout(s.req, s.resp, r.cfg.Timeout); err != nil {
		return restError(err), ""
	}
	body := s.resp.Body()
	if len(body) > 512 {
		body = body[:512]
	}
	code := s.resp.StatusCode()
	if code < 200 || code > 299 {
		return Outcome{Class: HTTPStatus, Code: code}, string(body)
	}
	return Outcome{Class: OK, Code: code}, string(body)
}
