// Package wine runs the Windows build of mxgateway for real, under Wine, in
// CI (make test-windows): the windows/amd64 gateway serves the Go SDK over
// TCP loopback and launches the windows/386 worker per session over the
// named pipe, in a Job Object; the worker drives a stand-in for the MXAccess
// COM server (lmxproxy/, C and IDL built with MinGW and widl) through the
// real STA, pump, connection-point sink and VARIANT marshalling.
//
// The tests are built with the "wine" tag; TestMain builds every binary,
// prepares (and caches) the Wine prefix and fails with the missing Debian
// packages when the tools are absent. Everything under this directory is
// test-only: the ProcessPrng shim (shim/), the stand-in server and its
// child process (lmxproxy/) and the Wine reproductions (quirks/).
// docs/windows.md says what the suite proves and what only a real
// System Platform node can.
//
// Outside the tests the package holds one thing: StandInGalaxy, which turns
// the simulator model testdata/standin.yaml into the stand-in's Galaxy, so
// that both backends serve the same Galaxy from one file.
package wine
