// Package sim is the Galaxy simulator backend: a deterministic, in-process
// implementation of backend.Backend that serves a Galaxy model (objects,
// typed attributes, users, signal generators) with the MXAccess semantics of
// the simulator contract in MXACCESS.md §7: handle allocation and reuse,
// asynchronous first values, write completions, security checks, buffered
// items, suspend/activate, parity warnings, and fault injection through a
// built-in Sim object or scripted in the model.
//
// All state is owned by one goroutine, the simulated STA. Method calls run on
// it one at a time, and every event comes from it in one order, never from
// inside a method call. Time comes from an injectable Clock and randomness
// from a seed, so tests are deterministic.
//
// The model format and the embedded demo Galaxy are documented in
// docs/simulator.md.
package sim
