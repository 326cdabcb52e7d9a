// Package e2e tests the client SDK against the real gateway binary and its
// simulator, through test/e2e/harness: every raw MXAccess method, value
// conversion for every data type, error typing, event resume across a
// severed TCP connection, and concurrent use. It holds only tests.
package e2e
