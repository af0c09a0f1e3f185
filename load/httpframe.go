package load

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/valyala/fasthttp"
)

// maxResponseHead bounds a response's head (status line, headers and the
// blank line after them), and separately a chunked body's trailer, on both
// REST engines: the epoll engine's framer counts it, the goroutine engine
// reads heads through a buffer of this size (fasthttp needs a whole head in
// its buffer), and so does the preflight, which uses that engine. Model
// servers send a few hundred bytes; 16 KiB leaves room for large cookies
// or tracing headers.
const maxResponseHead = 16 << 10

// The response-size errors; restError maps them (and
// fasthttp.ErrBodyTooLarge) to TooLarge. The head and trailer limit is
// loadprof's own and no setting raises it, so callers tell it apart.
var (
	errResponseTooLarge = errors.New("response body larger than the limit")
	// ErrResponseHeadTooLarge is a status line and headers over 16 KiB.
	ErrResponseHeadTooLarge = fmt.Errorf("response head (status line and headers) over loadprof's limit of %d KiB", maxResponseHead>>10)
	// ErrResponseTrailerTooLarge is a chunked body's trailer over 16 KiB.
	ErrResponseTrailerTooLarge = fmt.Errorf("response trailer over loadprof's limit of %d KiB", maxResponseHead>>10)
)

// errBareLF is a response head whose lines end in LF alone: HTTP/1.1
// wants CRLF, and waiting for one would time out although the whole answer
// arrived.
var errBareLF = fmt.Errorf("%w: the response head ends its lines with LF alone, not CRLF", errMalformedResponse)

// endsWithBareLF reports whether head holds a blank line made of bare LFs
// before any CRLF blank line: a head that will never end the HTTP/1.1 way.
// Blank lines before the status line are skipped, as notHTTP skips them:
// otherwise "\n\n" read alone would be called bare LF and the same bytes
// read with what follows "not HTTP".
func endsWithBareLF(head []byte) bool {
	head = bytes.TrimLeft(head, "\r\n")
	bare := bytes.Index(head, []byte("\n\n"))
	if bare < 0 {
		return false
	}
	crlf := bytes.Index(head, []byte("\r\n\r\n"))
	return crlf < 0 || bare < crlf
}

// notHTTP reports whether the first bytes of an answer (leading blank
// lines aside) already show it is not an HTTP/1.x response: an HTTP/2
// server's SETTINGS frame, a TLS record, anything else. Such an answer is
// refused when it arrives, not after --timeout spent waiting for a head
// that will never end.
func notHTTP(first []byte) bool {
	first = bytes.TrimLeft(first, "\r\n")
	n := min(len(first), len("HTTP/"))
	return n > 0 && string(first[:n]) != "HTTP/"[:n]
}

// errNotHTTP is an answer notHTTP refused. It says the same however much
// of the answer has arrived (the preflight shows its first bytes).
var errNotHTTP = fmt.Errorf("%w: the answer does not start with \"HTTP/\": not an HTTP/1.x server (gRPC? TLS?)", errMalformedResponse)

// errMalformedResponse is wrapped by the errors for bytes that are not an
// HTTP/1.1 response; restError maps them to BadResponse.
var errMalformedResponse = errors.New("malformed response")

// errResponseTimeout is a request's timeout in the event loop; it wraps
// os.ErrDeadlineExceeded so that it classifies like the goroutine engine's.
var errResponseTimeout = fmt.Errorf("no complete response within the timeout: %w", os.ErrDeadlineExceeded)

type frameState uint8

const (
	frameHeader     frameState = iota // waiting for the end of the header block
	frameBody                         // counting down a Content-Length body or a chunk's data
	frameChunkSize                    // waiting for a chunk-size line
	frameTrailer                      // waiting for the end of a chunked body's trailer
	frameUntilClose                   // a body without length: it ends when the server closes
)

// responseFramer finds the end of each HTTP/1.1 response in bytes that
// arrive in pieces, for a connection that cannot block on a reader (the
// event loop). readHead reads each response's head; the framer counts the
// body (Content-Length, chunked, or until close) without keeping it, so
// memory stays at one read buffer per connection whatever the response
// size.
type responseFramer struct {
	buf     []byte // buf[:n] holds bytes not yet consumed
	n       int
	scanned int // bytes of buf[:n] already searched for the header terminator

	state     frameState
	remaining int64 // bytes left in the body (frameBody) or the chunk data plus its CRLF
	chunked   bool
	bodySeen  int64
	trailer   int // bytes of the trailer consumed so far
	maxBody   int64
	started   bool // some byte of the current response has arrived

	// fasthttp's parse of heads that are not plain, made on first use
	hdr *fasthttp.ResponseHeader
	src bytes.Reader
	br  *bufio.Reader

	// Set when a response is complete.
	status     int
	closeAfter bool
	// The start of a non-2xx response's body, for the error's sample
	// (what a server says is wrong is usually there).
	errBody    [maxErrorBody]byte
	errBodyLen int

	// stream, when set, takes a 2xx body's bytes as they arrive (chunked
	// framing removed): an LLM target's event stream (llmrest.go).
	stream *llmStream
}

// maxErrorBody is how much of an error response's body is kept.
const maxErrorBody = 200

// keepErrorBody keeps the start of a non-2xx response's body.
func (f *responseFramer) keepErrorBody(b []byte) {
	if f.status < 200 || f.status > 299 {
		f.errBodyLen += copy(f.errBody[f.errBodyLen:], b)
	}
}

// errorBody is the kept start of the last response's body (empty for a
// 2xx one).
func (f *responseFramer) errorBody() []byte { return f.errBody[:f.errBodyLen] }

func newResponseFramer(maxBody int64) *responseFramer {
	return &responseFramer{buf: make([]byte, minReadBuffer), maxBody: maxBody}
}

// reset forgets everything buffered, for a new connection.
func (f *responseFramer) reset() {
	f.n, f.scanned = 0, 0
	f.startResponse()
}

func (f *responseFramer) startResponse() {
	f.state, f.remaining, f.chunked, f.bodySeen, f.trailer, f.started = frameHeader, 0, false, 0, 0, false
}

// The read buffer starts small (most predict responses are a few hundred
// bytes, and an open loop may hold a thousand connections) and doubles
// whenever a read fills it, for large responses to come in large reads.
const (
	minReadBuffer = 4 << 10
	maxReadBuffer = 64 << 10
)

// space is where the next read goes.
func (f *responseFramer) space() []byte {
	if f.n == len(f.buf) && len(f.buf) < maxReadBuffer {
		f.buf = append(f.buf, make([]byte, len(f.buf))...)
	}
	return f.buf[f.n:]
}

// filled is told that a read took all of space: the next one gets more.
func (f *responseFramer) filled() {
	if len(f.buf) < maxReadBuffer {
		f.buf = append(f.buf, make([]byte, len(f.buf))...)
	}
}

// pending reports whether bytes of a response have arrived.
func (f *responseFramer) pending() bool { return f.started || f.n > 0 }

// advance takes m newly read bytes and reports whether they complete a
// response. Bytes beyond that response are kept for the next one.
func (f *responseFramer) advance(m int) (done bool, err error) {
	f.n += m
	if m > 0 {
		f.started = true
	}
	for {
		switch f.state {
		case frameHeader:
			end, cl, err := f.readHead()
			if err != nil {
				return false, err
			}
			if end == 0 {
				return false, nil // the head is not complete yet
			}
			f.consume(end)
			f.errBodyLen = 0
			if f.status >= 100 && f.status < 200 && f.status != 101 {
				f.started = f.n > 0 // an interim response (100 Continue): the real one follows
				continue
			}
			if f.status == 408 {
				// The server gave up on the connection (see
				// eventLoop.complete): its body does not matter and the
				// connection is not used again.
				f.closeAfter = true
				return f.finish()
			}
			switch {
			case f.status == 204 || f.status == 304:
				return f.finish()
			case cl >= 0:
				if int64(cl) > f.maxBody {
					return false, errResponseTooLarge
				}
				f.state, f.remaining = frameBody, int64(cl)
			case cl == -1:
				f.state, f.chunked = frameChunkSize, true
			default:
				f.state, f.closeAfter = frameUntilClose, true
			}
		case frameBody:
			take := int64(f.n)
			if take > f.remaining {
				take = f.remaining
			}
			f.keepErrorBody(f.buf[:take]) // a chunk's CRLF too: trimmed with the rest
			if f.stream != nil {
				data := take
				if f.chunked {
					data = min(take, max(f.remaining-2, 0)) // not the chunk's CRLF
				}
				f.stream.body(f.status, f.buf[:data])
			}
			f.consume(int(take))
			f.remaining -= take
			if f.remaining > 0 {
				return false, nil
			}
			if !f.chunked {
				return f.finish()
			}
			f.state = frameChunkSize
		case frameChunkSize:
			line := bytes.IndexByte(f.buf[:f.n], '\n')
			if line < 0 {
				if f.n >= 1024 {
					return false, fmt.Errorf("%w: chunk-size line too long", errMalformedResponse)
				}
				return false, nil
			}
			size, err := parseChunkSize(f.buf[:line])
			if err != nil {
				return false, err
			}
			f.consume(line + 1)
			if size == 0 {
				f.state = frameTrailer
				continue
			}
			f.bodySeen += size
			if f.bodySeen > f.maxBody {
				return false, errResponseTooLarge
			}
			f.state, f.remaining = frameBody, size+2 // the data and its CRLF
		case frameTrailer:
			line := bytes.IndexByte(f.buf[:f.n], '\n')
			if line < 0 {
				if f.trailer+f.n >= maxResponseHead {
					return false, ErrResponseTrailerTooLarge
				}
				return false, nil
			}
			if f.trailer += line + 1; f.trailer > maxResponseHead {
				return false, ErrResponseTrailerTooLarge
			}
			blank := line == 0 || (line == 1 && f.buf[0] == '\r')
			f.consume(line + 1) // a trailer field, or the blank line that ends the body
			if blank {
				return f.finish()
			}
		case frameUntilClose:
			f.keepErrorBody(f.buf[:f.n])
			if f.stream != nil {
				f.stream.body(f.status, f.buf[:f.n])
			}
			f.bodySeen += int64(f.n)
			f.n = 0
			if f.bodySeen > f.maxBody {
				return false, errResponseTooLarge
			}
			return false, nil
		}
	}
}

// readHead reads the response head at the start of the buffer, if it is
// complete: it sets status and closeAfter and returns the head's length
// (0 while it is incomplete) and the body's Content-Length, -1 for a
// chunked body, or -2 for a body until close. A head longer than
// maxResponseHead fails however it arrives: complete in one read or not. Plain heads (HTTP/1.1, token
// names, printable values, one Content-Length or Transfer-Encoding:
// chunked, Connection close or keep-alive) are read here in one pass:
// fasthttp's complete parse, which keeps and normalises every field, was a
// third of the event loop's user time. Anything else goes to fasthttp, so
// every head means what fasthttp makes of it (FuzzPlainResponseHead checks
// that the two agree).
func (f *responseFramer) readHead() (end int, contentLength int64, err error) {
	head := f.buf[:f.n]
	p := parsePlainHead(head)
	if p.result == plainDone {
		if p.length > maxResponseHead {
			return 0, 0, ErrResponseHeadTooLarge
		}
		f.status, f.closeAfter = p.status, p.closeConn
		return p.length, p.contentLength, nil
	}
	end = -1 // plainMore: no blank line yet (FuzzPlainResponseHead checks)
	if p.result == plainNo {
		end = headerEnd(head, f.scanned)
	}
	if end < 0 {
		if f.n >= maxResponseHead {
			return 0, 0, ErrResponseHeadTooLarge // it ends after f.n bytes, if ever
		}
		if notHTTP(head) { // first: its bytes come first
			return 0, 0, errNotHTTP
		}
		if endsWithBareLF(head) {
			return 0, 0, errBareLF
		}
		f.scanned = max(f.n-3, 0)
		return 0, 0, nil
	}
	if end > maxResponseHead {
		return 0, 0, ErrResponseHeadTooLarge
	}
	if notHTTP(head[:end]) {
		return 0, 0, errNotHTTP // as when the first bytes come in a read of their own
	}
	if endsWithBareLF(head[:end]) {
		return 0, 0, errBareLF // as when the bare blank line comes in a read of its own
	}
	if f.hdr == nil {
		f.hdr, f.br = &fasthttp.ResponseHeader{}, bufio.NewReaderSize(&f.src, maxResponseHead)
	}
	f.src.Reset(head[:end])
	f.br.Reset(&f.src)
	if err := f.hdr.Read(f.br); err != nil {
		return 0, 0, fmt.Errorf("%w: %w", errMalformedResponse, err)
	}
	f.status, f.closeAfter = f.hdr.StatusCode(), f.hdr.ConnectionClose()
	return end, int64(f.hdr.ContentLength()), nil
}

type plainResult uint8

const (
	plainNo   plainResult = iota // not a plain head: fasthttp decides
	plainMore                    // plain so far, not complete
	plainDone                    // a complete plain head
)

// plainHead is what parsePlainHead found.
type plainHead struct {
	result        plainResult
	length        int // of the head, with its blank line (plainDone)
	status        int
	contentLength int64 // -1 chunked, -2 until close
	closeConn     bool
}

// parsePlainHead reads the plain head (see readHead) at the start of b in
// one pass with byte tables and 8-byte checks of field values: a general
// parser (fasthttp's, or one built on bytes.Cut and bytes.EqualFold) costs
// about 500 ns a head, a sixth of the event loop's CPU per request.
func parsePlainHead(b []byte) plainHead {
	no := plainHead{result: plainNo}
	more := plainHead{result: plainMore}
	const proto = "HTTP/1.1 "
	if len(b) < len(proto)+3 {
		if k := min(len(b), len(proto)); string(b[:k]) != proto[:k] {
			return no
		}
		return more
	}
	if string(b[:len(proto)]) != proto {
		return no
	}
	d := b[len(proto) : len(proto)+3]
	if d[0] < '1' || d[0] > '5' || d[1] < '0' || d[1] > '9' || d[2] < '0' || d[2] > '9' {
		return no
	}
	h := plainHead{result: plainDone, status: int(d[0]-'0')*100 + int(d[1]-'0')*10 + int(d[2]-'0'), contentLength: -2}
	i := len(proto) + 3
	if i < len(b) && b[i] == ' ' {
		i = skipValue(b, i+1)
	}
	switch lineEnd(b, i) {
	case plainNo:
		return no
	case plainMore:
		return more
	}
	i += 2
	var sawLength, chunked bool
	for {
		if i >= len(b) {
			return more
		}
		if b[i] == '\r' {
			switch lineEnd(b, i) {
			case plainNo:
				return no
			case plainMore:
				return more
			}
			h.length = i + 2
			break
		}
		keyStart := i
		for i < len(b) && headByte[b[i]]&tokenByte != 0 {
			i++
		}
		if i >= len(b) {
			return more
		}
		if i == keyStart || b[i] != ':' {
			return no
		}
		key := b[keyStart:i]
		for i++; i < len(b) && (b[i] == ' ' || b[i] == '\t'); i++ {
		}
		valueStart := i
		i = skipValue(b, i)
		switch lineEnd(b, i) {
		case plainNo:
			return no
		case plainMore:
			return more
		}
		value := b[valueStart:i]
		for len(value) > 0 && (value[len(value)-1] == ' ' || value[len(value)-1] == '\t') {
			value = value[:len(value)-1]
		}
		i += 2
		switch {
		case asciiFold(key, "content-length"):
			if sawLength || len(value) == 0 || len(value) > 18 {
				return no
			}
			sawLength = true
			var n int64
			for _, c := range value {
				if c < '0' || c > '9' {
					return no
				}
				n = n*10 + int64(c-'0')
			}
			if !chunked {
				h.contentLength = n
			}
		case asciiFold(key, "transfer-encoding"):
			if chunked || !asciiFold(value, "chunked") {
				return no
			}
			chunked, h.contentLength = true, -1
		case asciiFold(key, "connection"):
			switch {
			case asciiFold(value, "close"):
				h.closeConn = true
			case !asciiFold(value, "keep-alive"):
				return no
			}
		case asciiFold(key, "trailer"):
			return no // fasthttp checks the names it announces
		}
	}
	if h.contentLength == -2 && h.status != 204 && h.status != 304 && (h.status < 100 || h.status > 199) {
		h.closeConn = true // the body ends when the connection does
	}
	return h
}

// lineEnd says whether b[i:] starts with CRLF (plainDone), could still
// (plainMore), or does not (plainNo).
func lineEnd(b []byte, i int) plainResult {
	switch {
	case i >= len(b):
		return plainMore
	case b[i] != '\r':
		return plainNo
	case i+1 >= len(b):
		return plainMore
	case b[i+1] != '\n':
		return plainNo
	}
	return plainDone
}

// skipValue returns the offset of the first byte at or after i that may
// not stand in a field value (normally the CR ending the line), checking
// eight bytes at a time while none is a control, DEL or non-ASCII byte.
func skipValue(b []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		below := (x - 0x20*ones) &^ x & highs // some byte < 0x20
		above := ((x + ones) | x) & highs     // some byte >= 0x7f
		if below|above != 0 {
			break
		}
	}
	for i < len(b) && headByte[b[i]]&valueByte != 0 {
		i++
	}
	return i
}

// asciiFold reports whether b equals lower (lower-case letters and '-') in
// any case.
func asciiFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		if b[i]|0x20 != lower[i] && b[i] != lower[i] {
			return false
		}
	}
	return true
}

// headByte classifies the bytes of a plain head: token characters may name
// a field; value bytes are visible ASCII, space and tab.
var headByte = func() (t [256]uint8) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] |= valueByte
	}
	t['\t'] |= valueByte
	for _, c := range "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" {
		t[c] |= tokenByte
	}
	return t
}()

const (
	valueByte = 1 << iota
	tokenByte
)

// eof is called when the server closed the connection; it reports whether
// that completed a response (one without a length), and otherwise why the
// response is lost.
func (f *responseFramer) eof() (done bool, err error) {
	if f.state == frameUntilClose {
		return f.finish()
	}
	if f.pending() {
		return false, io.ErrUnexpectedEOF
	}
	return false, io.EOF
}

func (f *responseFramer) finish() (bool, error) {
	f.startResponse()
	f.started = f.n > 0
	f.scanned = 0
	if f.n > 0 {
		// Nothing was asked for yet: bytes after a response mean the
		// connection is out of step, so it is not used again.
		f.closeAfter = true
	}
	return true, nil
}

func (f *responseFramer) consume(k int) {
	copy(f.buf, f.buf[k:f.n])
	f.n -= k
	f.scanned = 0
}

// headerEnd returns the offset just past the blank line (CRLF CRLF) that
// ends a header block in b, searching from offset from, or -1. Bare LF
// line ends are not accepted, as fasthttp does not accept them either.
func headerEnd(b []byte, from int) int {
	if i := bytes.Index(b[from:], crlfcrlf); i >= 0 {
		return from + i + 4
	}
	return -1
}

var crlfcrlf = []byte("\r\n\r\n")

// parseChunkSize reads the hexadecimal size at the start of a chunk-size
// line (extensions after ';' are ignored).
func parseChunkSize(line []byte) (int64, error) {
	line = bytes.TrimRight(line, "\r")
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 15 {
		return 0, fmt.Errorf("%w: chunk size %q", errMalformedResponse, line)
	}
	var size int64
	for _, c := range line {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, fmt.Errorf("%w: chunk size %q", errMalformedResponse, line)
		}
		size = size<<4 | int64(d)
	}
	return size, nil
}
