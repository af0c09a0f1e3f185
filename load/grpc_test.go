package load

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loadprof/loadprof/internal/testkit"
	"github.com/loadprof/loadprof/tfproto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// grpcTestServer is a grpc-go server on 127.0.0.1 that answers every call
// with what respond returns, as raw bytes, and counts the calls it got.
type grpcTestServer struct {
	addr        string
	srv         *grpc.Server
	calls       atomic.Int64 // calls answered by respond
	respond     func(call int64) ([]byte, error)
	onRecvError func(error) // a request the server could not read (its own limit)
}

// serverBytes is a message the test server sends as it is.
type serverBytes []byte

// serverRawCodec receives requests as bytes and sends serverBytes as they
// are, so that a test server can answer anything.
type serverRawCodec struct{}

func (serverRawCodec) Name() string { return "proto" }

func (serverRawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.(serverBytes)
	if !ok {
		return nil, fmt.Errorf("serverRawCodec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (serverRawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	p, ok := v.(*serverBytes)
	if !ok {
		return fmt.Errorf("serverRawCodec: cannot unmarshal into %T", v)
	}
	*p = data.Materialize()
	return nil
}

func startGRPCTestServer(t testing.TB, respond func(call int64) ([]byte, error), opts ...grpc.ServerOption) *grpcTestServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &grpcTestServer{addr: ln.Addr().String(), respond: respond}
	opts = append(opts, grpc.ForceServerCodecV2(serverRawCodec{}), grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		var req serverBytes
		if err := stream.RecvMsg(&req); err != nil {
			if s.onRecvError != nil {
				s.onRecvError(err)
			}
			return err
		}
		reply, err := s.respond(s.calls.Add(1))
		if err != nil {
			return err
		}
		if reply == nil {
			return nil
		}
		return stream.SendMsg(serverBytes(reply))
	}))
	s.srv = grpc.NewServer(opts...)
	go s.srv.Serve(ln)
	t.Cleanup(s.srv.Stop)
	return s
}

func validPredictResponse(t testing.TB) []byte {
	b, err := proto.Marshal(&tfproto.PredictResponse{Outputs: map[string]*tfproto.TensorProto{
		"y": {Dtype: tfproto.DataType_DT_FLOAT, TensorShape: &tfproto.TensorShapeProto{Dim: []*tfproto.TensorShapeProto_Dim{{Size: 2}}}, FloatVal: []float32{1, 2}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newTestGRPC(t testing.TB, addr string, cfg GRPCConfig) *GRPC {
	conns, err := DialGRPC(addr, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { CloseConns(conns) })
	cfg.Conns = conns
	if cfg.Requests == nil {
		cfg.Requests = [][]byte{{0x0a, 0x00}}
	}
	if cfg.CheckResponse == nil {
		cfg.CheckResponse = PredictResponseCheck()
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	tr, err := NewGRPC(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// sendAll sends n requests one after the other through s and counts their
// outcomes by class name. Every outcome must say whether the server
// answered the way its class does.
func sendAll(t *testing.T, s Sender, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for range n {
		out := s.Send(0)
		counts[out.Key().String()]++
		if out.Class != OK && out.Err == nil {
			t.Fatalf("%s without an error", out.Key())
		}
	}
	return counts
}

func TestGRPCStatusesTheServerSendsStayGRPCClasses(t *testing.T) {
	valid := validPredictResponse(t)
	var unavailable, exhausted, tooBig atomic.Int64
	srv := startGRPCTestServer(t, func(call int64) ([]byte, error) {
		switch call % 3 {
		case 0:
			unavailable.Add(1)
			return nil, status.Error(codes.Unavailable, "overloaded")
		case 1:
			exhausted.Add(1)
			return nil, status.Error(codes.ResourceExhausted, "quota")
		}
		return valid, nil
	}, grpc.MaxRecvMsgSize(1000))
	srv.onRecvError = func(err error) { tooBig.Add(1) }
	tr := newTestGRPC(t, srv.addr, GRPCConfig{Requests: [][]byte{{}, make([]byte, 2000)}})
	got := sendAll(t, tr.NewSender(), 90)
	// The server's own message limit rejects a large request: its
	// RESOURCE_EXHAUSTED is the server's status, not a response too large.
	s := tr.NewSender()
	for range 5 {
		if out := s.Send(1); out.Key().String() != "grpc_RESOURCE_EXHAUSTED" || !out.Responded() {
			t.Fatalf("a request over the server's limit: %s %v", out.Key(), out.Err)
		}
	}
	if srv.calls.Load() != 90 || tooBig.Load() != 5 {
		t.Fatalf("the server answered %d calls and refused %d, want 90 and 5", srv.calls.Load(), tooBig.Load())
	}
	want := map[string]int{"grpc_UNAVAILABLE": int(unavailable.Load()), "grpc_RESOURCE_EXHAUSTED": int(exhausted.Load()), "ok": 30}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("client counted %v, the server sent %v", got, want)
	}
}

func TestGRPCStoppedServerIsConnectionRefusedNotAStatus(t *testing.T) {
	srv := startGRPCTestServer(t, func(int64) ([]byte, error) { return validPredictResponse(t), nil })
	tr := newTestGRPC(t, srv.addr, GRPCConfig{})
	s := tr.NewSender()
	before := sendAll(t, s, 20)
	srv.srv.Stop()
	after := sendAll(t, s, 30)
	if srv.calls.Load() != 20 || before["ok"] != 20 {
		t.Fatalf("the server answered %d calls, the client counted %v", srv.calls.Load(), before)
	}
	// The first call may still find the closing connection; the others
	// find nothing listening.
	if after["connection_refused"] < 29 || after["connection_refused"]+after["connection_closed"] != 30 {
		t.Fatalf("after the server stopped: %v, want 30 connection failures, all but one refused", after)
	}
	out := s.Send(0)
	if out.Responded() || out.Class != ConnRefused {
		t.Fatalf("%s counts as answered", out.Key())
	}

	never := newTestGRPC(t, testkit.ClosedAddr(t), GRPCConfig{})
	if got := sendAll(t, never.NewSender(), 10); got["connection_refused"] != 10 {
		t.Fatalf("a target nothing listens on: %v", got)
	}
}

func TestGRPCAnswersThatAreNotPredictResponsesAreBadResponses(t *testing.T) {
	valid := validPredictResponse(t)
	answers := map[string][]byte{
		"garbage":           []byte("<html>502 Bad Gateway</html>"),
		"empty message":     {},
		"metadata response": metadataResponse(t, 1),
		"model spec only":   mustMarshal(t, &tfproto.GetModelMetadataResponse{ModelSpec: &tfproto.ModelSpec{Name: "m"}}),
		"no message":        nil, // status OK without a message
	}
	for name, bad := range answers {
		var badSent atomic.Int64
		srv := startGRPCTestServer(t, func(call int64) ([]byte, error) {
			if call%2 == 0 {
				return valid, nil
			}
			badSent.Add(1)
			return bad, nil
		})
		tr := newTestGRPC(t, srv.addr, GRPCConfig{})
		s := tr.NewSender()
		got := sendAll(t, s, 40)
		if srv.calls.Load() != 40 || got["ok"] != 20 || got["bad_response"] != int(badSent.Load()) || len(got) != 2 {
			t.Errorf("%s: the server answered %d calls, %d of them bad; the client counted %v", name, srv.calls.Load(), badSent.Load(), got)
		}
		if out := s.Send(0); out.Class != BadResponse || out.Responded() || out.Err == nil {
			t.Errorf("%s: %s %v", name, out.Key(), out.Err)
		}
	}
}

// paddedPredictResponse is a valid PredictResponse of exactly size bytes:
// an output and a string field the descriptor does not know.
func paddedPredictResponse(t *testing.T, size int) []byte {
	msg := validPredictResponse(t)
	tag := protowire.SizeTag(99)
	pad := size - len(msg) - tag - 1
	for pad+tag+protowire.SizeVarint(uint64(pad)) > size-len(msg) {
		pad--
	}
	msg = protowire.AppendTag(msg, 99, protowire.BytesType)
	msg = protowire.AppendBytes(msg, make([]byte, pad))
	if len(msg) != size {
		t.Fatalf("padded to %d bytes, want %d", len(msg), size)
	}
	return msg
}

func TestGRPCMaxResponseApplies(t *testing.T) {
	const limit = 300_000 // several HTTP/2 frames: the check sees a response in pieces
	atLimit, over := paddedPredictResponse(t, limit), paddedPredictResponse(t, limit+1)
	bigGarbage := append(append([]byte{}, atLimit[:limit-10]...), 0xff, 0xff, 0xff)
	srv := startGRPCTestServer(t, func(call int64) ([]byte, error) {
		switch call % 3 {
		case 0:
			return atLimit, nil
		case 1:
			return over, nil
		}
		return bigGarbage, nil
	})
	tr := newTestGRPC(t, srv.addr, GRPCConfig{MaxResponseBytes: limit})
	got := sendAll(t, tr.NewSender(), 30)
	want := map[string]int{"ok": 10, "response_too_large": 10, "bad_response": 10}
	if srv.calls.Load() != 30 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the server answered %d calls; the client counted %v, want %v", srv.calls.Load(), got, want)
	}

	// Small answers too: their trailers may be in before the client sees
	// the message is over its limit.
	small := startGRPCTestServer(t, func(int64) ([]byte, error) { return paddedPredictResponse(t, 120), nil })
	tr = newTestGRPC(t, small.addr, GRPCConfig{MaxResponseBytes: 119})
	if got := sendAll(t, tr.NewSender(), 50); got["response_too_large"] != 50 || small.calls.Load() != 50 {
		t.Fatalf("120-byte answers over a 119-byte limit: %v, server calls %d", got, small.calls.Load())
	}
}

// startH2C serves handler over HTTP/2 without TLS on 127.0.0.1, as gRPC
// expects, and counts the requests.
func startH2C(t *testing.T, handler http.HandlerFunc) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int64
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &protocols, ErrorLog: log.New(io.Discard, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		handler(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), &requests
}

func TestGRPCStreamResetsAndDroppedConnectionsAreConnectionFailures(t *testing.T) {
	// A server that resets every stream (RST_STREAM) instead of answering.
	addr, requests := startH2C(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		panic(http.ErrAbortHandler)
	})
	tr := newTestGRPC(t, addr, GRPCConfig{})
	if got := sendAll(t, tr.NewSender(), 20); got["connection_reset"] != 20 || requests.Load() != 20 {
		t.Fatalf("stream resets: the server saw %d requests, the client counted %v", requests.Load(), got)
	}

	// A server that answers with headers and part of a message, then
	// resets the stream.
	addr, requests = startH2C(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte{0, 0, 0, 0, 100, 0x0a})
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	tr = newTestGRPC(t, addr, GRPCConfig{})
	if got := sendAll(t, tr.NewSender(), 20); got["connection_reset"] != 20 || requests.Load() != 20 {
		t.Fatalf("a reset after the headers: the server saw %d requests, the client counted %v", requests.Load(), got)
	}

	// Something that accepts connections and closes them at once, and
	// something that resets them.
	for _, c := range []struct {
		linger int
		want   string
	}{{-1, "connection_closed"}, {0, "connection_reset"}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var accepted atomic.Int64
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				if c.linger != 0 {
					// Read what the client sent (its preface and the
					// header of its SETTINGS frame at least), so that the
					// close is a FIN: unread bytes make the kernel reset.
					conn.SetReadDeadline(time.Now().Add(10 * time.Second))
					io.ReadFull(conn, make([]byte, 24+9))
					conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
					io.Copy(io.Discard, conn)
				}
				conn.(*net.TCPConn).SetLinger(c.linger)
				conn.Close()
			}
		}()
		tr := newTestGRPC(t, ln.Addr().String(), GRPCConfig{})
		got := sendAll(t, tr.NewSender(), 10)
		ln.Close()
		if got[c.want] != 10 || accepted.Load() == 0 {
			t.Errorf("linger %d: %d connections accepted; the client counted %v, want %s", c.linger, accepted.Load(), got, c.want)
		}
	}
}

// BenchmarkGRPCLoopbackCall is one Predict call to a grpc-go server on
// loopback (the server's allocations count too): "plain" is a connection
// without answerTracker and no response check, as the transport was before
// either; "tracker" adds the stats handler that tells the server's statuses
// from the client's; "tracker+check" adds PredictResponseCheck, as runs do.
func BenchmarkGRPCLoopbackCall(b *testing.B) {
	values := make([]float32, 1000)
	for _, size := range []struct {
		name  string
		reply []byte
	}{
		{"2floats", mustMarshal(b, &tfproto.PredictResponse{Outputs: map[string]*tfproto.TensorProto{"y": {Dtype: tfproto.DataType_DT_FLOAT, FloatVal: values[:2]}}})},
		{"1000floats", mustMarshal(b, &tfproto.PredictResponse{Outputs: map[string]*tfproto.TensorProto{"y": {Dtype: tfproto.DataType_DT_FLOAT, FloatVal: values}}})},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := grpc.NewServer(grpc.ForceServerCodecV2(serverRawCodec{}), grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			var req serverBytes
			if err := stream.RecvMsg(&req); err != nil {
				return err
			}
			return stream.SendMsg(serverBytes(size.reply))
		}))
		go srv.Serve(ln)
		b.Cleanup(srv.Stop)
		plain, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { plain.Close() })
		tracked, err := DialGRPC(ln.Addr().String(), 1, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { CloseConns(tracked) })
		for _, c := range []struct {
			name  string
			conn  *grpc.ClientConn
			check ResponseCheck
		}{{"plain", plain, nil}, {"tracker", tracked[0], nil}, {"tracker+check", tracked[0], PredictResponseCheck()}} {
			b.Run(size.name+"/"+c.name, func(b *testing.B) {
				tr, err := NewGRPC(GRPCConfig{Conns: []*grpc.ClientConn{c.conn}, Requests: [][]byte{{0x0a, 0x00}}, CheckResponse: c.check})
				if err != nil {
					b.Fatal(err)
				}
				s := tr.NewSender()
				b.ReportAllocs()
				for b.Loop() {
					if out := s.Send(0); out.Class != OK {
						b.Fatal(out.Key(), out.Err)
					}
				}
			})
		}
	}
}

func TestGRPCAnswersFromSomethingThatIsNotGRPCAreHTTPStatusesOrBadResponses(t *testing.T) {
	// A proxy in front of the server answers with its own error page.
	addr, requests := startH2C(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html>502 Bad Gateway</html>")
	})
	tr := newTestGRPC(t, addr, GRPCConfig{})
	s := tr.NewSender()
	if got := sendAll(t, s, 20); got["http_502"] != 20 || requests.Load() != 20 {
		t.Fatalf("a proxy's 502: it saw %d requests, the client counted %v", requests.Load(), got)
	}
	if out := s.Send(0); !out.Responded() {
		t.Fatalf("%s is not an answer", out.Key())
	}

	// Something that answers 200, but not gRPC.
	addr, requests = startH2C(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"error": "connection refused upstream"}`)
	})
	tr = newTestGRPC(t, addr, GRPCConfig{})
	if got := sendAll(t, tr.NewSender(), 20); got["bad_response"] != 20 || requests.Load() != 20 {
		t.Fatalf("JSON over HTTP/2: it saw %d requests, the client counted %v", requests.Load(), got)
	}
}
