package load

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// frameAll feeds stream to a framer in pieces of the given sizes (cycled;
// nil means all at once), then reports the end of the stream, and returns
// what the framer made of it: the status of each response, then how the
// connection ended: "closed" when the event loop would drop it (the server
// said so, or sent bytes nobody asked for), "eof" when the end of the
// stream completed a response, or the error.
func frameAll(stream []byte, pieces []int, maxBody int64) []string {
	f := newResponseFramer(maxBody)
	var got []string
	for i := 0; len(stream) > 0; i++ {
		k := len(stream)
		if len(pieces) > 0 {
			k = min(max(pieces[i%len(pieces)], 1), len(stream))
		}
		k = min(k, len(f.space()))
		if k == 0 {
			return append(got, "buffer full")
		}
		copy(f.space(), stream[:k])
		stream = stream[k:]
		done, err := f.advance(k)
		if err != nil {
			return append(got, "error: "+err.Error())
		}
		if done {
			got = append(got, fmt.Sprint(f.status))
			if f.closeAfter || len(stream) > 0 {
				return append(got, "closed")
			}
		}
	}
	done, err := f.eof()
	if done {
		return append(got, fmt.Sprint(f.status), "eof")
	}
	return append(got, "end: "+err.Error())
}

func TestResponseFramer(t *testing.T) {
	big := strings.Repeat("z", 100_000)
	cases := []struct {
		name, stream string
		want         []string
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
			[]string{"200", "end: EOF"}},
		{"two in a row arrive apart", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 503 Busy\r\ncontent-length: 0\r\n\r\n",
			// in one read the second is unasked for: the framer flags the connection
			[]string{"200", "closed"}},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10;name=value\r\n0123456789abcdef\r\n0\r\n\r\n",
			[]string{"200", "end: EOF"}},
		{"chunked with trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nA: 1\r\nB: 2\r\n\r\n",
			[]string{"200", "end: EOF"}},
		{"until close", "HTTP/1.1 200 OK\r\n\r\n" + big, []string{"200", "eof"}},
		{"connection close", "HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", []string{"500", "closed"}},
		{"interim responses", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
			[]string{"201", "end: EOF"}},
		{"no content ignores a length", "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", []string{"204", "end: EOF"}},
		{"large body", fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(big), big), []string{"200", "end: EOF"}},
		{"body over the limit", fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", 1<<21), []string{"error: " + errResponseTooLarge.Error()}},
		{"chunks over the limit", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n", []string{"error: " + errResponseTooLarge.Error()}},
		{"until close over the limit", "HTTP/1.1 200 OK\r\n\r\n" + strings.Repeat(big, 11), []string{"error: " + errResponseTooLarge.Error()}},
		{"cut in the body", "HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\nabc", []string{"end: unexpected EOF"}},
		{"cut in the headers", "HTTP/1.1 200 OK\r\nContent-Le", []string{"end: unexpected EOF"}},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", []string{`error: malformed response: chunk size "zz"`}},
		{"not HTTP", "SSH-2.0-OpenSSH_9.6\r\n\r\n", nil},
		{"head too long", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("h", maxResponseHead), []string{"error: " + ErrResponseHeadTooLarge.Error()}},
		{"head too long, complete", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("h", maxResponseHead) + "\r\n\r\n", []string{"error: " + ErrResponseHeadTooLarge.Error()}},
		{"head too long, not plain", "HTTP/1.1 200 OK\r\nX-Big: caf\xc3\xa9" + strings.Repeat("h", maxResponseHead) + "\r\n\r\n", []string{"error: " + ErrResponseHeadTooLarge.Error()}},
		{"head at the limit", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("h", maxResponseHead-len("HTTP/1.1 200 OK\r\nX-Big: \r\nContent-Length: 0\r\n\r\n")) + "\r\nContent-Length: 0\r\n\r\n", []string{"200", "end: EOF"}},
		{"trailer too long", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + strings.Repeat("T: 1\r\n", maxResponseHead/6+1) + "\r\n", []string{"error: " + ErrResponseTrailerTooLarge.Error()}},
		{"request timeout", "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n<html>timed out</html>", []string{"408", "closed"}},
		{"request timeout, kept alive", "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n", []string{"408", "closed"}},
	}
	for _, c := range cases {
		for _, pieces := range [][]int{nil, {1}, {7, 1, 300}, {4096}} {
			got := frameAll([]byte(c.stream), pieces, 1<<20)
			if c.want == nil {
				if len(got) != 1 || !strings.HasPrefix(got[0], "error: malformed response") {
					t.Errorf("%s in pieces %v: %q, want a malformed-response error", c.name, pieces, got)
				}
				continue
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("%s in pieces %v:\n got %q\nwant %q", c.name, pieces, got, c.want)
			}
		}
	}
}

func TestResponseFramerErrorsClassify(t *testing.T) {
	for err, want := range map[error]ErrorClass{io.EOF: ConnClosed, io.ErrUnexpectedEOF: ConnClosed, errResponseTooLarge: TooLarge, errResponseTimeout: Timeout} {
		if got := restError(err).Class; got != want {
			t.Errorf("%v: class %v, want %v", err, got, want)
		}
	}
}

// FuzzResponseFramer checks that how a byte stream is split into reads
// never changes how it is framed, and that no input panics or overruns.
func FuzzResponseFramer(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"), uint8(1), uint8(5))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n"), uint8(2), uint8(9))
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"), uint8(3), uint8(1))
	f.Add([]byte("HTTP/1.1 200 OK\r\n\r\nuntil close"), uint8(4), uint8(4))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n"), uint8(1), uint8(200))
	f.Fuzz(func(t *testing.T, stream []byte, a, b uint8) {
		whole := frameAll(stream, nil, 1<<16)
		split := frameAll(stream, []int{int(a), int(b)}, 1<<16)
		if fmt.Sprint(whole) != fmt.Sprint(split) {
			t.Fatalf("framing depends on the reads:\nwhole %q\nsplit %q", whole, split)
		}
	})
}

// FuzzPlainResponseHead checks the framer's own reading of plain response
// heads against fasthttp's: whatever parsePlainHead reads as a complete
// head, fasthttp reads with the same length, status, body length and
// connection handling; what it calls incomplete has no end of head yet.
func FuzzPlainResponseHead(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 22\r\n\r\n",
		"HTTP/1.1 200 OK\r\nServer: fasthttp\r\nDate: Wed, 25 Nov 2026 13:00:00 GMT\r\nContent-Type: application/json\r\nContent-Length: 41\r\n\r\n{}",
		"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 204\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A:\tb c \r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n",
		"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Long: abcdefghijklmnopqrstuvwxyz0123456789\xff\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Le",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := parsePlainHead(b)
		end := headerEnd(b, 0)
		switch p.result {
		case plainMore:
			if end >= 0 {
				t.Fatalf("%q: incomplete for parsePlainHead, but a head ends at %d", b, end)
			}
			return
		case plainNo:
			return
		}
		if p.length != end {
			t.Fatalf("%q: plain head of %d bytes, the blank line ends at %d", b, p.length, end)
		}
		head := b[:end]
		var h fasthttp.ResponseHeader
		if err := h.Read(bufio.NewReader(bytes.NewReader(head))); err != nil {
			t.Fatalf("%q: read as plain (%+v), fasthttp refuses it: %v", head, p, err)
		}
		if h.StatusCode() != p.status || int64(h.ContentLength()) != p.contentLength || h.ConnectionClose() != p.closeConn {
			t.Fatalf("%q: plain reading %+v; fasthttp %d, length %d, close %v",
				head, p, h.StatusCode(), h.ContentLength(), h.ConnectionClose())
		}
	})
}

// The heads model servers send are read without fasthttp's full parse.
func TestPlainHeadCoversTypicalServers(t *testing.T) {
	for head, want := range map[string]plainHead{
		"HTTP/1.1 200 OK\r\nServer: fasthttp\r\nDate: Wed, 25 Nov 2026 13:00:00 GMT\r\nContent-Type: application/json\r\nContent-Length: 41\r\n\r\n": {status: 200, contentLength: 41},
		"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 25\r\n\r\n":                                                            {status: 200, contentLength: 25},
		"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n":                                           {status: 400, contentLength: -1},
		"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n":                                                         {status: 503, contentLength: 0, closeConn: true},
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n":                                                                                  {status: 200, contentLength: -2, closeConn: true},
	} {
		want.result, want.length = plainDone, len(head)
		if got := parsePlainHead([]byte(head + "{body}")); got != want {
			t.Errorf("%q: %+v, want %+v", head, got, want)
		}
		for cut := 0; cut < len(head); cut++ {
			if got := parsePlainHead([]byte(head[:cut])); got.result != plainMore {
				t.Errorf("%q cut at %d: %+v, want plainMore", head, cut, got)
			}
		}
	}
	for _, head := range []string{"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Bin: caf\xc3\xa9\r\n\r\n"} {
		if got := parsePlainHead([]byte(head)); got.result != plainNo {
			t.Errorf("%q read as %+v; fasthttp should decide", head, got)
		}
	}
}

var simHead = []byte("HTTP/1.1 200 OK\r\nServer: loadprof-sim\r\nDate: Wed, 25 Nov 2026 13:44:12 GMT\r\nContent-Type: application/json\r\nContent-Length: 21\r\n\r\n")

func BenchmarkResponseHead(b *testing.B) {
	b.Run("plain", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if parsePlainHead(simHead).result != plainDone {
				b.Fatal("not plain")
			}
		}
	})
	b.Run("fasthttp", func(b *testing.B) {
		var h fasthttp.ResponseHeader
		var src bytes.Reader
		br := bufio.NewReaderSize(&src, maxResponseHead)
		for i := 0; i < b.N; i++ {
			src.Reset(simHead)
			br.Reset(&src)
			if err := h.Read(br); err != nil {
				b.Fatal(err)
			}
		}
	})
}
