// Package config holds the gateway's one typed configuration: its keys and
// defaults, loading from defaults < config file < environment < flags,
// complete validation before anything listens, and `config print`.
//
// Every key has one name used everywhere: the YAML key is the name
// (`http_listen`), the flag is the name with '-' for '_' (`--http-listen`),
// and the environment variable is MXGATEWAY_ plus the name in upper case
// (`MXGATEWAY_HTTP_LISTEN`). The key table in keys.go is the single source of
// truth for all three and for docs/configuration.md.
package config
