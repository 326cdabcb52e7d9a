// Package backend defines the MXAccess surface the worker drives: the Backend
// interface (every method of ILMXProxyServer through ILMXProxyServer5), the
// Sink through which the four event families arrive, and the portable error
// and status types both the simulator and the real COM backend return.
//
// A backend knows nothing of frames or gRPC. It reuses the public API's value,
// status and event messages so nothing is translated twice.
package backend
