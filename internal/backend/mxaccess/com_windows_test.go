//go:build windows && 386

package mxaccess

import (
	"context"
	"testing"

	"github.com/mxgateway/mxgateway/internal/variant"
)

// TestOpenCOMUnknownProgID runs on any windows/386 machine: creating an
// unregistered class must fail cleanly (STA started and torn down).
func TestOpenCOMUnknownProgID(t *testing.T) {
	_, err := OpenCOM(context.Background(), OpenConfig{ProgID: "MxGateway.DoesNotExist.1"}, func(string, []variant.Value, error) {})
	if err == nil {
		t.Fatal("created an unregistered class")
	}
}
