// Command mxbench is the benchmark driver behind `make bench`. It builds
// mxgateway, starts its own gateways on loopback (with authentication when
// the gateway offers it) and, for the runtime storm, its own Galaxy runtime
// (`mxgateway galaxy`) with a gateway attached to it, drives them through the Go SDK and compares every
// figure with a ceiling measured in the same run: a bare grpc-go server
// streaming the same event messages from memory, a bare unary echo of the
// same size, a bare spawn of the worker binary, and a node-opcua peer
// serving the same number of changing values. It prints one table and
// writes a JSON report (bench/results/latest.json).
//
// Speed never fails the run: mxbench reports, it does not judge. A part that
// cannot run (no node, npm failed) is reported as skipped with the reason.
//
// `mxbench profile` runs the event and command paths against a gateway built
// in-process from the gateway's packages, with the worker re-executed from
// the mxbench binary itself, and writes CPU and allocation profiles of both
// processes.
package main
