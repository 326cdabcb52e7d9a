// Package logging sets up log/slog for every mxgateway binary: text or JSON
// output, the shared attribute keys, redaction of secrets, and re-emission
// of a worker's JSON log lines through the gateway's logger.
//
// Redaction happens in a handler wrapper (NewRedactHandler) that every
// logger built by New uses: attributes whose key looks secret (password,
// secret, nonce, api_key, authorization, token, pepper, credential) are
// replaced by REDACTED, and any API key (mxgw_<id>_<secret>) inside a
// message, string or error value keeps its public id and loses its secret.
// Secret-bearing values should also use the Secret type, which prints
// REDACTED however it is formatted.
package logging
