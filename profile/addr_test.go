package profile

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestNormalizeAddrTakesTheFormsPeopleWrite(t *testing.T) {
	for in, want := range map[string]string{
		"localhost:8500":        "localhost:8500",
		"grpc://localhost:8500": "localhost:8500",
		"localhost":             "localhost:8500",
		"grpc://gpu-box":        "gpu-box:8500",
		"[::1]:9000":            "[::1]:9000",
		"[::1]":                 "[::1]:8500",
		"10.0.0.5:8500/":        "10.0.0.5:8500",
	} {
		if got, err := NormalizeAddr(in); err != nil || got != want {
			t.Errorf("NormalizeAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "http://localhost:8501", "localhost:", "host:8500/v1/models"} {
		if got, err := NormalizeAddr(bad); err == nil {
			t.Errorf("NormalizeAddr(%q) = %q, accepted", bad, got)
		}
	}
}

func TestReachableTellsAnHTTP1PortAndASilentPortFromAProfiler(t *testing.T) {
	// A port that accepts and never answers: no gRPC connection in time.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = Reachable(context.Background(), conn, ln.Addr().String(), 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "no gRPC connection within 300ms") {
		t.Fatalf("silent port: %v", err)
	}
	// A real gRPC server.
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	go srv.Serve(gln)
	defer srv.Stop()
	gconn, err := grpc.NewClient(gln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer gconn.Close()
	if err := Reachable(context.Background(), gconn, gln.Addr().String(), time.Minute); err != nil {
		t.Fatalf("a gRPC server: %v", err)
	}
}
