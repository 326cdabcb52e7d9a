package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// Validate checks every key and every rule between keys, and returns all
// problems at once: an errors.Join of *FieldError values, each naming the
// key, the bad value and what is allowed. It reads the file system only to
// check that tls_cert and tls_key exist when tls=files. It returns nil for
// a valid configuration.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}

	for i := range keys {
		if msg := keys[i].check(c); msg != "" {
			bad(keys[i].name, "%s", msg)
		}
	}

	listenOK := checkAddr(c.Listen) == ""
	httpOK := checkAddr(c.HTTPListen) == ""
	if msg := checkAddr(c.Listen); msg != "" {
		bad("listen", "%s", msg)
	}
	if msg := checkAddr(c.HTTPListen); msg != "" {
		bad("http_listen", "%s", msg)
	} else if listenOK && sameAddr(c.Listen, c.HTTPListen) {
		bad("http_listen", "%q is the same address as listen", c.HTTPListen)
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir", "must be set (no default: neither XDG_STATE_HOME nor HOME is set)")
	}

	if c.SimPlant > 0 && c.SimModel != "" {
		bad("sim_plant", "serves the generated plant: unset sim_model (or sim_plant)")
	}
	if c.SimGalaxy != "" && (c.SimModel != "" || c.SimPlant > 0) {
		bad("sim_galaxy", "the external runtime serves its own model: unset sim_model and sim_plant")
	}

	if c.Auth == AuthNone && listenOK && !IsLoopbackAddr(c.Listen) {
		bad("auth", "none is allowed only when listen is a loopback address (listen is %q)", c.Listen)
	}
	if c.Auth == AuthNone && httpOK && !IsLoopbackAddr(c.HTTPListen) {
		bad("auth", "none is allowed only when http_listen is a loopback address (http_listen is %q)", c.HTTPListen)
	}
	// Plaintext would carry API keys and values across the network.
	if c.TLS == TLSOff && listenOK && !IsLoopbackAddr(c.Listen) {
		bad("tls", "off is allowed only when listen is a loopback address (listen is %q): plaintext is allowed on loopback only; use self-signed, or files with tls_cert and tls_key", c.Listen)
	}

	if c.TLS == TLSFiles {
		for _, f := range []struct{ key, path string }{{"tls_cert", c.TLSCert}, {"tls_key", c.TLSKey}} {
			if f.path == "" {
				bad(f.key, "must be set when tls is files")
				continue
			}
			if st, err := os.Stat(f.path); err != nil {
				bad(f.key, "%q cannot be read: %v", f.path, errors.Unwrap(err))
			} else if st.IsDir() {
				bad(f.key, "%q is a directory, not a PEM file", f.path)
			}
		}
	}

	if c.DashboardListen != "" {
		switch msg := checkAddr(c.DashboardListen); {
		case msg != "":
			bad("dashboard_listen", "%s", msg)
		case listenOK && sameAddr(c.Listen, c.DashboardListen), httpOK && sameAddr(c.HTTPListen, c.DashboardListen):
			bad("dashboard_listen", "%q is the same address as listen or http_listen", c.DashboardListen)
		case c.DashboardTLS == TLSOff && !IsLoopbackAddr(c.DashboardListen):
			bad("dashboard_tls", "off is allowed only when dashboard_listen is a loopback address (dashboard_listen is %q): the login form carries API keys", c.DashboardListen)
		}
	}
	if c.DashboardTLS == TLSFiles && c.TLS != TLSFiles {
		for _, f := range []struct{ key, path string }{{"tls_cert", c.TLSCert}, {"tls_key", c.TLSKey}} {
			if f.path == "" {
				bad(f.key, "must be set when dashboard_tls is files")
			}
		}
	}
	if c.DashboardSessionMax < c.DashboardSessionIdle {
		bad("dashboard_session_max", "%s must be at least dashboard_session_idle (%s)",
			FormatDuration(c.DashboardSessionMax), FormatDuration(c.DashboardSessionIdle))
	}

	if c.WorkerBackend == BackendMXAccess {
		if c.WorkerExe == "" {
			bad("worker_exe", "must be set when worker_backend is mxaccess (the path of mxworker.exe)")
		}
		if strings.TrimSpace(c.MXAccessProgID) == "" {
			bad("mxaccess_prog_id", "must be set when worker_backend is mxaccess")
		}
	}

	if c.HeartbeatGrace <= c.HeartbeatInterval {
		bad("heartbeat_grace", "%s must be greater than heartbeat_interval (%s)",
			FormatDuration(c.HeartbeatGrace), FormatDuration(c.HeartbeatInterval))
	}
	if c.HeartbeatCeiling < c.HeartbeatGrace {
		bad("heartbeat_ceiling", "%s must be at least heartbeat_grace (%s)",
			FormatDuration(c.HeartbeatCeiling), FormatDuration(c.HeartbeatGrace))
	}
	if c.DataWatchdogFailAfter <= c.DataWatchdogStaleAfter {
		bad("data_watchdog_fail_after", "%s must be greater than data_watchdog_stale_after (%s)",
			FormatDuration(c.DataWatchdogFailAfter), FormatDuration(c.DataWatchdogStaleAfter))
	}
	if strings.TrimSpace(c.DataWatchdogReference) == "" {
		bad("data_watchdog_reference", "must be set: an attribute reference, %s or %s", WatchdogAuto, WatchdogOff)
	}
	if c.CredentialBackoffMax < c.CredentialBackoff {
		bad("credential_backoff_max", "%s must be at least credential_backoff (%s)",
			FormatDuration(c.CredentialBackoffMax), FormatDuration(c.CredentialBackoff))
	}
	c.validateNATS(bad)
	return errors.Join(errs...)
}

// checkAddr returns the problem with a host:port listen address, or "".
func checkAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%q is not host:port (for example 127.0.0.1:5000)", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("%q has an invalid port (allowed 0-65535)", addr)
	}
	if strings.ContainsAny(host, " \t/") {
		return fmt.Sprintf("%q has an invalid host", addr)
	}
	return ""
}

// sameAddr reports whether two valid listen addresses would collide. Port 0
// never collides.
func sameAddr(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa == "0" || pa != pb {
		return false
	}
	return ha == hb || ha == "" || hb == "" || ha == "0.0.0.0" || hb == "0.0.0.0" || ha == "::" || hb == "::"
}

// IsLoopbackAddr reports whether a listen address (host:port, or a bare
// host) binds only loopback: 127.0.0.0/8, ::1 or "localhost". An empty host
// (":5000", which listens everywhere) is not loopback.
func IsLoopbackAddr(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
