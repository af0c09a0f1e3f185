// Package load drives requests at a target and records how they went: a
// scheduler decides when each request is sent (open loop at a fixed rate,
// or closed loop at a fixed concurrency), a Transport sends it, and a
// Recorder keeps latency histograms and error counts.
package load

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// ErrorClass says whether a request succeeded and, if not, how it failed.
type ErrorClass uint8

// The ways a request can end.
const (
	OK           ErrorClass = iota
	HTTPStatus              // a response with a non-2xx status
	GRPCStatus              // a gRPC status other than OK
	Timeout                 // no response before the deadline
	ConnRefused             // nothing listens at the address
	ConnReset               // the peer reset the connection
	ConnClosed              // the peer closed the connection before answering
	TooLarge                // the response exceeded the size limit
	BadResponse             // bytes came back that are not a valid answer (not HTTP, not the call's message type)
	OtherFailure            // anything else (DNS, TLS, protocol errors)
	// StreamFailure is a streamed LLM answer that went wrong after its
	// 2xx head (Code is its LLMFailure): it stalled, closed before
	// [DONE], held malformed events or an error event.
	StreamFailure
)

// Outcome is how one request ended.
type Outcome struct {
	Class ErrorClass
	Code  int   // HTTP status or gRPC code, when there was one
	Err   error // the transport's error, for the first failure of a class

	// Bytes of the request written and of the answer read, for the
	// report's byte rates: REST counts the HTTP bytes on the connection
	// (after TLS), every try of a resent request; gRPC counts the messages
	// alone (HTTP/2 framing and headers are gRPC's).
	BytesSent, BytesReceived int64
}

// Responded reports whether the server answered, whatever the status: such
// requests have a meaningful latency.
func (o Outcome) Responded() bool {
	return o.Class == OK || o.Class == HTTPStatus || o.Class == GRPCStatus
}

// Measured reports whether the request reached the server, so that the
// time until it ended is a latency: it was answered (with any status, too
// large, or with bytes that are not a valid answer), it timed out (it ends
// at the timeout: the server had it at least that long), or its connection
// was reset or closed while the server had it. Such requests are in the
// latency figures, failures at the time they failed, so that a failing
// server cannot look faster than it is by timing out. A request that never
// reached a server (connection refused, DNS, TLS handshake) has no latency.
func (o Outcome) Measured() bool {
	return o.Class != ConnRefused && o.Class != OtherFailure
}

// ErrorKey names a failure class the way result.json and reports show it.
type ErrorKey struct {
	Class ErrorClass
	Code  int
}

// Key returns the ErrorKey of o.
func (o Outcome) Key() ErrorKey { return ErrorKey{Class: o.Class, Code: o.Code} }

// String is the stable name of an error class in results: "http_503",
// "grpc_UNAVAILABLE" (the code's name; "grpc_17" for a code without one),
// "timeout", "connection_refused", ...
func (k ErrorKey) String() string {
	switch k.Class {
	case OK:
		return "ok"
	case HTTPStatus:
		return fmt.Sprintf("http_%d", k.Code)
	case GRPCStatus:
		return fmt.Sprintf("grpc_%s", grpcCodeName(k.Code))
	case Timeout:
		return "timeout"
	case ConnRefused:
		return "connection_refused"
	case ConnReset:
		return "connection_reset"
	case ConnClosed:
		return "connection_closed"
	case TooLarge:
		return "response_too_large"
	case BadResponse:
		return "bad_response"
	case StreamFailure:
		return LLMFailure(k.Code).String()
	}
	return "other"
}

var grpcCodeNames = []string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

func grpcCodeName(code int) string {
	if code >= 0 && code < len(grpcCodeNames) {
		return grpcCodeNames[code]
	}
	return fmt.Sprint(code)
}

// ClassifyNetError maps a transport error to its class. Transports call it
// for errors that are not their own protocol's statuses.
func ClassifyNetError(err error) ErrorClass {
	var te interface{ Timeout() bool }
	switch {
	case err == nil:
		return OK
	case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &te) && te.Timeout()):
		return Timeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return ConnRefused
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		return ConnReset
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "closed connection"):
		return ConnClosed
	}
	return OtherFailure
}
