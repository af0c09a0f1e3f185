package load

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/loadprof/loadprof/internal/setting"
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
	URL     string
	Method  string // POST when empty
	Headers []Header
	Bodies  [][]byte // indexed by payload number
	// BodyHeaders, when set, are extra headers of each payload's request,
	// indexed like Bodies (the binary tensor extension's
	// Inference-Header-Content-Length).
	BodyHeaders      [][]Header
	ContentType      string // "application/json" when empty
	Timeout          time.Duration
	MaxResponseBytes int // larger responses fail as TooLarge; 0 means 64 MiB
	TLS              *tls.Config
	Engine           Engine
	// CheckProbeAnswer, when set, checks the whole body of a 2xx answer
	// to a Probe (header gives the answer's headers): an error makes the
	// probe's outcome BadResponse. The load does not check answers.
	CheckProbeAnswer func(body []byte, header func(key string) []byte) error
	// LLM, when set, times the answers as OpenAI-compatible streams
	// (llmrest.go).
	LLM *LLMTarget
}

// Engine is how REST requests are driven.
type Engine string

// The REST engines. Both send the same bytes (rendered by fasthttp) and
// classify outcomes the same way.
const (
	// EngineAuto picks epoll for http:// on Linux and goroutines otherwise.
	EngineAuto Engine = ""
	// EngineEpoll drives plaintext connections from a few event loops,
	// each on its own OS thread, like wrk: as many as the load needs (one
	// per 32 connections or 25,000 requests/s), at most GOMAXPROCS-1 and
	// at least one. Linux only.
	EngineEpoll Engine = "epoll"
	// EngineGoroutines gives each connection a goroutine and blocking I/O
	// through Go's netpoller; it also does TLS.
	EngineGoroutines Engine = "goroutines"
)

// ParseEngine reads an engine's name: auto, epoll or goroutines.
func ParseEngine(s string) (Engine, error) {
	switch e := Engine(s); e {
	case "auto":
		return EngineAuto, nil
	case EngineEpoll, EngineGoroutines:
		return e, nil
	}
	return "", setting.Invalid("load.RESTConfig.Engine", fmt.Sprintf("%q", s), "want auto, epoll or goroutines")
}

// REST is a Transport for HTTP/1.1 requests on keep-alive connections,
// one request at a time on each, so the number of connections is the
// number of requests in flight. Every payload's request is rendered once
// (by fasthttp) before the load starts. With the goroutine engine each
// Sender owns a connection; with the epoll engine Run drives the
// connections itself (evloop_linux.go). Both frame the load's responses
// with responseFramer (httpframe.go): a plain head is read by its own
// parser, fasthttp parses only the heads that parser leaves to it, and a
// body is counted, not kept. Only Probe, which shows and checks the body,
// reads a whole response with fasthttp.
type REST struct {
	cfg      RESTConfig
	engine   Engine
	v2       bool // the URL is a V2 infer route: error answers are V2's {"error": ...}
	llm      *LLMTarget
	addr     string
	tls      *tls.Config
	requests [][]byte // rendered request per payload

	mu    sync.Mutex
	conns map[*restSender]struct{}

	fastestAnswer  atomic.Int64 // ns from a request written to its whole answer, the least seen; 0 before any
	fastestConnect atomic.Int64 // ns a TCP connect took, the least seen: a round trip; 0 before any
	resent         atomic.Int64 // requests sent a second time (see resendWindow)
}

// minResendWindow is how long after a request was written a close still
// counts as racing an idle timeout before any answer is known.
const minResendWindow = 50 * time.Millisecond

// resendWindow is how soon after a request was written a close of its
// kept-alive connection (or a 408) must come for the request to be sent
// again. A server closing an idle connection as the request arrives closes
// it within about a round trip. A TCP connect takes one round trip, and
// the fastest answer one plus the server's work: a close later than three
// connects, or than two fastest answers, came after the server had the
// request for a while, a failure of the server's, which is counted and not
// hidden by a second try (a predict call is a POST, which Go's net/http
// never resends once written). At least 50 ms, for the scheduling of a
// busy machine.
func (r *REST) resendWindow() time.Duration {
	rtt := time.Duration(math.MaxInt64)
	if c := r.fastestConnect.Load(); c > 0 {
		rtt = 3 * time.Duration(c)
	}
	if a := r.fastestAnswer.Load(); a > 0 {
		rtt = min(rtt, 2*time.Duration(a))
	}
	if rtt == math.MaxInt64 {
		return minResendWindow
	}
	return max(minResendWindow, rtt)
}

// noteAnswer keeps the fastest time from a request written to its answer.
func (r *REST) noteAnswer(d time.Duration) { keepLeast(&r.fastestAnswer, d) }

// noteConnect keeps the fastest TCP connect.
func (r *REST) noteConnect(d time.Duration) { keepLeast(&r.fastestConnect, max(d, time.Microsecond)) }

// keepLeast sets a to d if d is positive and less than a (or a is 0).
func keepLeast(a *atomic.Int64, d time.Duration) {
	for {
		cur := a.Load()
		if (cur != 0 && int64(d) >= cur) || d <= 0 || a.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

// Resent is how many requests were sent a second time because their
// kept-alive connection was closed under them (or answered 408) within
// the resend window: the server had not taken them.
func (r *REST) Resent() int64 { return r.resent.Load() }

// NewREST checks cfg and renders the requests. No connection is made until
// the first request.
func NewREST(cfg RESTConfig) (*REST, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, setting.Invalid("load.RESTConfig.URL", fmt.Sprintf("%q", cfg.URL), err.Error())
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, setting.Invalid("load.RESTConfig.URL", fmt.Sprintf("%q", cfg.URL), "scheme must be http or https")
	}
	if u.Host == "" {
		return nil, setting.Invalid("load.RESTConfig.URL", fmt.Sprintf("%q", cfg.URL), "no host")
	}
	if len(cfg.Bodies) == 0 {
		return nil, errors.New("rest: no payloads")
	}
	if cfg.BodyHeaders != nil && len(cfg.BodyHeaders) != len(cfg.Bodies) {
		return nil, fmt.Errorf("rest: %d payloads but headers for %d", len(cfg.Bodies), len(cfg.BodyHeaders))
	}
	if cfg.ContentType == "" {
		cfg.ContentType = "application/json"
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
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = 64 << 20
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	r := &REST{cfg: cfg, addr: addr, conns: map[*restSender]struct{}{}, engine: cfg.Engine}
	_, r.v2, _ = ParseV2InferPath(u.Path)
	if err := r.setLLM(cfg.LLM); err != nil {
		return nil, err
	}
	switch {
	case cfg.Engine == EngineEpoll && !eventLoopsAvailable:
		return nil, setting.Invalid("load.RESTConfig.Engine", "epoll", "needs Linux; use goroutines")
	case cfg.Engine == EngineEpoll && u.Scheme == "https":
		return nil, setting.Invalid("load.RESTConfig.Engine", "epoll", cfg.URL+" is https, which only the goroutine engine speaks")
	case cfg.Engine == EngineAuto && eventLoopsAvailable && u.Scheme == "http":
		r.engine = EngineEpoll
	case cfg.Engine == EngineAuto:
		r.engine = EngineGoroutines
	}
	if u.Scheme == "https" {
		r.tls = &tls.Config{}
		if cfg.TLS != nil {
			r.tls = cfg.TLS.Clone()
		}
		if r.tls.ServerName == "" {
			r.tls.ServerName = u.Hostname()
		}
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	for i, body := range cfg.Bodies {
		req.Header.Reset()
		req.SetRequestURI(cfg.URL)
		req.Header.SetMethod(cfg.Method)
		req.Header.SetContentType(cfg.ContentType)
		req.Header.Set("User-Agent", "loadprof")
		if cfg.BodyHeaders != nil {
			for _, h := range cfg.BodyHeaders[i] {
				req.Header.Set(h.Key, h.Value)
			}
		}
		hostSet := false
		for _, h := range cfg.Headers {
			req.Header.Set(h.Key, h.Value)
			hostSet = hostSet || strings.EqualFold(h.Key, "Host")
		}
		if hostSet {
			// fasthttp writes the URL as given (absolute-form) when the
			// Host header is set, and the absolute URI's host overrides
			// Host (RFC 9112, 3.2.2): send origin-form so the override holds.
			req.SetRequestURI(u.RequestURI())
		}
		req.SetBodyRaw(body)
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		if err := req.Write(w); err != nil {
			return nil, fmt.Errorf("rest: rendering the request: %w", err)
		}
		w.Flush()
		r.requests = append(r.requests, buf.Bytes())
	}
	return r, nil
}

// Engine is the engine NewREST chose.
func (r *REST) Engine() Engine { return r.engine }

// NewSender returns a Sender with its own connection and buffers.
func (r *REST) NewSender() Sender { return r.newSender() }

func (r *REST) newSender() *restSender {
	s := &restSender{rest: r, framer: newResponseFramer(int64(r.cfg.MaxResponseBytes)), stream: r.newLLMStream()}
	s.framer.stream = s.stream
	r.mu.Lock()
	r.conns[s] = struct{}{}
	r.mu.Unlock()
	return s
}

// Close closes every connection at once, also under a request still in
// flight (which then fails): after an interrupted run has waited its grace
// period, nothing may wait for a server that does not answer.
func (r *REST) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := range r.conns {
		s.connMu.Lock()
		if s.conn != nil {
			s.conn.Close()
		}
		s.connMu.Unlock()
	}
}

type restSender struct {
	rest   *REST
	conn   net.Conn // written under connMu, which Close takes to close it
	connMu sync.Mutex
	tls    bool // conn is a *tls.Conn
	br     *bufio.Reader
	// The load's answers go through framer, which keeps no body; the
	// probe's (resp set, framer nil) are read whole by fasthttp.
	framer *responseFramer
	resp   *fasthttp.Response
	probe  socketProbe // the TCP socket under conn
	wrote  time.Time   // when the last request was written

	counted countingReader // conn, counting the bytes read for Outcome.BytesReceived
	sentNow int64          // bytes written for the request being sent

	// An LLM target's stream timing (llmrest.go); stream nil otherwise.
	stream *llmStream
	next   pendingRequest
	clock  func() time.Duration
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (s *restSender) dial(deadline time.Time) error {
	d := net.Dialer{Deadline: deadline}
	began := time.Now()
	conn, err := d.Dial("tcp", s.rest.addr)
	if err != nil {
		return err
	}
	s.rest.noteConnect(time.Since(began))
	s.probe.attach(conn)
	s.tls = s.rest.tls != nil
	if s.tls {
		tc := tls.Client(conn, s.rest.tls)
		_ = tc.SetDeadline(deadline)
		if err := tc.Handshake(); err != nil {
			conn.Close()
			return fmt.Errorf("TLS handshake with %s: %w", s.rest.addr, err)
		}
		conn = tc
	}
	s.connMu.Lock()
	s.conn = conn
	s.connMu.Unlock()
	s.counted.r = conn
	if s.br == nil {
		// fasthttp reads a response head only when it is whole in this
		// buffer: its size is the head limit.
		s.br = bufio.NewReaderSize(&s.counted, maxResponseHead)
	} else {
		s.br.Reset(&s.counted)
	}
	if s.framer != nil {
		s.framer.reset()
	}
	return nil
}

func (s *restSender) drop() {
	if s.conn != nil {
		s.conn.Close()
		s.connMu.Lock()
		s.conn = nil
		s.connMu.Unlock()
	}
}

// roundTrip sends the rendered request of payload and returns the status
// of its answer; the start of an error's body is in s.framer (the load) or
// the whole response in s.resp (the probe) unless the status is 408. A
// connection that failed or that the server closes is dropped, and the
// next request dials a new one.
//
// A kept-alive connection is used again only when nothing arrived on it
// since its last response (reusable). The server may still close it just
// as the request goes out: a request on a kept-alive connection that finds
// it closed or reset before any byte of an answer, or that is answered 408
// (a server's idle timeout, see exchange), is sent once more on a new
// connection, as browsers and Go's net/http do: a server that closes an
// idle connection has not taken the request on it. A request on a new
// connection gets no second try, nor does a second try: their failures
// are counted. The deadline is the first try's, and the latency counts
// from the first try's start (the caller's).
func (s *restSender) roundTrip(payload int) (int, error) {
	deadline := time.Now().Add(s.rest.cfg.Timeout)
	if s.conn != nil && (s.conn.SetDeadline(deadline) != nil || !s.reusable(deadline)) {
		s.drop()
	}
	reused := s.conn != nil
	code, answered, err := s.exchange(payload, deadline)
	if reused && (code == 408 || (!answered && closedByPeer(err))) && time.Since(s.wrote) <= s.rest.resendWindow() {
		s.rest.resent.Add(1)
		code, _, err = s.exchange(payload, deadline)
	}
	if err == nil && code != 408 {
		s.rest.noteAnswer(time.Since(s.wrote))
	}
	return code, err
}

// exchange sends the request on s.conn, dialing first if there is none,
// and reads the answer. answered reports whether any byte of it arrived.
//
// A 408 (Request Timeout) ends the exchange at its status line and drops
// the connection, as the epoll engine does: servers such as uvicorn,
// gunicorn and Node send it when they close a connection that stayed idle
// too long, so on a kept-alive connection it most likely answers no
// request, and roundTrip tries again; on a new one it is the server's
// answer to this request and counts as http_408.
func (s *restSender) exchange(payload int, deadline time.Time) (code int, answered bool, err error) {
	if s.conn == nil {
		if err := s.dial(deadline); err != nil {
			return 0, false, err
		}
		if err := s.conn.SetDeadline(deadline); err != nil {
			s.drop()
			return 0, false, err
		}
	}
	s.wrote = time.Now() // a write that fails sent nothing the server took
	n, err := s.conn.Write(s.rest.requests[payload])
	s.sentNow += int64(n)
	if err != nil {
		s.drop()
		return 0, false, err
	}
	s.wrote = time.Now()
	if s.framer != nil {
		return s.readFramed()
	}
	// fasthttp reports every failure before the first response byte as
	// EOF; wait for that byte here so that a reset stays a reset.
	if _, err := s.br.Peek(1); err != nil {
		s.drop()
		return 0, false, err
	}
	// The status line is nearly always in the first read; one that comes
	// in pieces is read whole below (no waiting for bytes here that a
	// broken server may never send).
	if status, _ := s.br.Peek(min(s.br.Buffered(), len("HTTP/1.1 408 "))); isStatus408(status) {
		s.drop()
		return 408, true, nil
	}
	// fasthttp would wait for the CRLF that ends a head whose lines end
	// in a bare LF until the timeout, though the answer is all there.
	if first, _ := s.br.Peek(s.br.Buffered()); notHTTP(first) {
		s.drop()
		return 0, true, errNotHTTP
	} else if endsWithBareLF(first) {
		s.drop()
		return 0, true, errBareLF
	}
	if err := s.resp.ReadLimitBody(s.br, s.rest.cfg.MaxResponseBytes); err != nil {
		s.drop()
		return 0, true, responseError(err, s.resp.Header.ContentLength() == -1)
	}
	code = s.resp.StatusCode()
	// Bytes after the response answer nothing that was asked: the
	// connection is out of step with the requests.
	if s.resp.ConnectionClose() || s.br.Buffered() > 0 || code == 408 {
		s.drop()
	}
	return code, true, nil
}

// readFramed reads the answer as the epoll engine does (see
// eventLoop.read): the framer parses a plain head itself and counts the
// body without copying it, keeping only the start of an error's. Reading
// the answer with fasthttp.Response instead parsed and stored every header
// and copied every body, work that grew with what a protocol's answers
// carry (a V2 answer's extra header and longer body) rather than being
// the same for every request.
func (s *restSender) readFramed() (code int, answered bool, err error) {
	f := s.framer
	for {
		space := f.space()
		n, err := s.counted.Read(space)
		if n > 0 {
			answered = true
			s.streamRead()
			done, ferr := f.advance(n)
			if ferr != nil {
				s.drop()
				return 0, true, ferr
			}
			s.streamAlive()
			if done {
				// closeAfter: a 408, Connection: close, a body until
				// close, or bytes after the answer (out of step).
				if f.closeAfter {
					s.drop()
				}
				return f.status, true, nil
			}
			if n == len(space) {
				f.filled()
			}
		}
		switch {
		case err == io.EOF:
			done, ferr := f.eof()
			s.drop()
			if done || s.stream.finished() {
				return f.status, true, nil
			}
			return 0, answered || f.pending(), ferr
		case err != nil:
			s.drop()
			if s.stream.finished() { // data: [DONE] came: the answer is whole
				return f.status, true, nil
			}
			return 0, answered, err
		}
	}
}

// isStatus408 reports whether b starts with the status line of a 408.
func isStatus408(b []byte) bool {
	return len(b) == len("HTTP/1.1 408 ") && string(b[:7]) == "HTTP/1." && (b[7] == '0' || b[7] == '1') &&
		string(b[8:12]) == " 408" && (b[12] == ' ' || b[12] == '\r')
}

// responseError names fasthttp's errors in loadprof's terms: a head (or,
// after a chunked body, a trailer) that does not fit the read buffer is
// over maxResponseHead, and an error that is not the network's is an
// answer that is not HTTP.
func responseError(err error, chunked bool) error {
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.As(err, &small) && chunked: // the head was read: the trailer did not fit
		return ErrResponseTrailerTooLarge
	case errors.As(err, &small):
		return ErrResponseHeadTooLarge
	case errors.Is(err, fasthttp.ErrBodyTooLarge) || errors.As(err, &netErr):
		return err
	case ClassifyNetError(err) == OtherFailure:
		return fmt.Errorf("%w: %w", errMalformedResponse, err)
	}
	return err
}

// reusable reports whether nothing arrived on the kept-alive connection
// since its last response: no bytes (an answer to nothing, or a 408 sent
// before an idle close) and no close. A TLS connection's socket may carry
// TLS messages that are not data, such as the session tickets a TLS 1.3
// server may send after the handshake: these are read through the
// connection (tls.Conn takes them in), and only data or a close counts.
// A TLS record read from the socket earlier may also wait inside tls.Conn,
// where the socket does not show it: a read with a deadline already past
// decrypts such a record, if any, without touching the socket.
func (s *restSender) reusable(deadline time.Time) bool {
	if s.br.Buffered() > 0 {
		return false
	}
	state := s.probe.state()
	if !s.tls {
		return state == socketQuiet || state == socketUnknown
	}
	defer s.conn.SetReadDeadline(deadline)
	for try := 0; try < 3; try++ {
		if state == socketClosed {
			return false
		}
		wait := time.Unix(1, 0)
		if state == socketBytes {
			// Long enough for the records that are there to be read; a
			// partial one waits for the response.
			wait = time.Now().Add(5 * time.Millisecond)
		}
		if err := s.conn.SetReadDeadline(wait); err != nil {
			return false
		}
		if _, err := s.br.Peek(1); err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return false // data nobody asked for, or a close
		}
		if state != socketBytes {
			return true
		}
		if err := s.conn.SetReadDeadline(deadline); err != nil { // the probe needs one not past
			return false
		}
		state = s.probe.state()
	}
	return false
}

// closedByPeer reports whether err is the server closing or resetting the
// connection.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (s *restSender) Send(payload int) Outcome {
	s.sentNow, s.counted.n = 0, 0
	s.beginStream(payload)
	out := s.send(payload)
	out.BytesSent, out.BytesReceived = s.sentNow, s.counted.n
	return s.endStream(out)
}

func (s *restSender) send(payload int) Outcome {
	code, err := s.roundTrip(payload)
	if err != nil {
		return restError(err)
	}
	return s.rest.statusOutcome(code, s.framer.errorBody())
}

// statusOutcome is the outcome of an HTTP answer with status code: OK for
// 2xx, HTTPStatus for any other, with the start of its body as the error
// (the sample a report shows for the class: "model not found" says more
// than "http_404").
func statusOutcome(code int, body []byte) Outcome {
	if code < 200 || code > 299 {
		return Outcome{Class: HTTPStatus, Code: code, Err: statusError(code, body)}
	}
	return Outcome{Class: OK, Code: code}
}

// statusError says what an error response said: its status and the start
// of its body on one line, bytes that are not printable text as '?'.
func statusError(code int, body []byte) error {
	if len(body) > maxErrorBody {
		body = body[:maxErrorBody]
	}
	text := strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return '?'
		}
		return r
	}, string(body))), " ")
	if text == "" {
		return fmt.Errorf("HTTP %d (no body)", code)
	}
	return fmt.Errorf("HTTP %d: %s", code, text)
}

func restError(err error) Outcome {
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge) || errors.Is(err, errResponseTooLarge) ||
		errors.Is(err, ErrResponseHeadTooLarge) || errors.Is(err, ErrResponseTrailerTooLarge):
		return Outcome{Class: TooLarge, Err: err}
	case errors.Is(err, errMalformedResponse):
		return Outcome{Class: BadResponse, Err: err}
	}
	return Outcome{Class: ClassifyNetError(err), Err: err}
}

// Probe sends payload once on a new connection and returns its outcome and
// up to 512 bytes of the response body, so that a failing target can be
// explained before the load starts. Cancelling ctx ends the probe at once
// with ctx's error (closing its connection): a target that never answers
// must not hold Ctrl-C for the whole timeout.
func (r *REST) Probe(ctx context.Context, payload int) (Outcome, string) {
	type probed struct {
		out  Outcome
		body string
	}
	done := make(chan probed, 1)
	go func() {
		// Not in r.conns: the probe owns its sender, and Close must not
		// wait for it.
		s := &restSender{rest: r, resp: &fasthttp.Response{}}
		defer s.drop()
		if err := s.dial(time.Now().Add(r.cfg.Timeout)); err != nil {
			done <- probed{out: restError(err)}
			return
		}
		conn := s.conn
		stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
		defer stop()
		code, err := s.roundTrip(payload)
		if err != nil {
			done <- probed{out: restError(err)}
			return
		}
		var body []byte
		if code != 408 { // see exchange
			body = s.resp.Body()
		}
		if check := r.cfg.CheckProbeAnswer; check != nil && code/100 == 2 {
			if err := check(body, s.resp.Header.Peek); err != nil {
				done <- probed{out: Outcome{Class: BadResponse, Code: code, Err: err}}
				return
			}
		}
		if len(body) > 512 {
			body = body[:512]
		}
		done <- probed{r.statusOutcome(code, body), string(body)}
	}()
	select {
	case p := <-done:
		return p.out, p.body
	case <-ctx.Done():
		return Outcome{Class: OtherFailure, Err: ctx.Err()}, ""
	}
}
