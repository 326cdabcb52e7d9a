package uitest

import (
	"testing"

	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// TestMain builds mxgateway once and, after the suite, fails the run if any
// gateway or worker process or any socket file is left behind.
func TestMain(m *testing.M) { harness.Main(m) }
