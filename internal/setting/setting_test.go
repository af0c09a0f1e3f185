package setting

import (
	"errors"
	"io/fs"
	"reflect"
	"testing"
)

func TestInvalidNamesTheSettingAndValue(t *testing.T) {
	err := Invalid("load.Plan.Rate", "-1", "must be positive")
	if got := err.Error(); got != "load.Plan.Rate -1: must be positive" {
		t.Fatalf("Error() = %q", got)
	}
	if got := Invalid("bench.Config.GRPC.Model", "", "needed with bench.Config.GRPC.Addr").Error(); got != "bench.Config.GRPC.Model: needed with bench.Config.GRPC.Addr" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestErrorfKeepsTheCause(t *testing.T) {
	err := Errorf("load.GRPCConfig.Target", "load.GRPCConfig.Target %s: %w", "x:1", fs.ErrNotExist)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%v does not wrap its cause", err)
	}
	var se *Error
	if !errors.As(error(err), &se) || se.Setting != "load.GRPCConfig.Target" {
		t.Fatalf("errors.As: %#v", se)
	}
}

func TestRenameReplacesKnownNamesOnly(t *testing.T) {
	flags := map[string]string{"load.Plan.Rate": "--rate", "load.Plan.Concurrency": "--concurrency"}
	msg := "load.Plan.Rate and load.Plan.Concurrency exclude each other; see result.json and load.Plan.Unknown"
	want := "--rate and --concurrency exclude each other; see result.json and load.Plan.Unknown"
	if got := Rename(msg, flags); got != want {
		t.Fatalf("Rename = %q, want %q", got, want)
	}
	if got := Names(msg); !reflect.DeepEqual(got, []string{"load.Plan.Rate", "load.Plan.Concurrency", "result.json", "load.Plan.Unknown"}) {
		t.Fatalf("Names = %q", got)
	}
}
