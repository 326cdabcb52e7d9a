// Package harness runs the real mxgateway binary for end-to-end tests: it
// builds the binary once per test run, starts `mxgateway serve` as a real
// process on loopback ports chosen by the kernel, parses the addresses it
// prints, dials it with the generated gRPC client, and stops it again. It
// also checks that nothing outlives a gateway: no worker process and no
// socket file.
//
// Use it from a TestMain:
//
//	func TestMain(m *testing.M) { harness.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		g := harness.Start(t, "--lease=2s")
//		resp, err := g.Client().OpenSession(ctx, &mxgatewayv1.OpenSessionRequest{})
//		...
//	}
package harness
