package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mxgateway/mxgateway/internal/backend/sim"
	"github.com/mxgateway/mxgateway/internal/config"
)

// resolveTimeout bounds the name lookups of the listen addresses.
const resolveTimeout = 3 * time.Second

// hostProblems checks what config.Validate cannot: the configuration
// against this machine. The simulator model must load, data_dir must be (or
// be creatable as) a directory, log_file must be creatable, and listen and
// http_listen must not name the same socket in two spellings. It runs
// before anything listens, for `serve` and for `config validate`. Keys in
// skip already have a problem and are not checked again.
func hostProblems(c *config.Config, skip map[string]bool) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &config.FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if c.WorkerBackend == config.BackendSim && c.SimModel != "" && !skip["sim_model"] {
		if _, err := sim.LoadModel(c.SimModel); err != nil {
			bad("sim_model", "%s", strings.TrimPrefix(err.Error(), "sim: load model: "))
		}
	}
	if c.DataDir != "" && !skip["data_dir"] {
		if msg := checkDirTarget(c.DataDir); msg != "" {
			bad("data_dir", "%q %s", c.DataDir, msg)
		}
	}
	if c.LogFile != "" && !skip["log_file"] {
		if msg := checkFileTarget(c.LogFile); msg != "" {
			bad("log_file", "%q %s", c.LogFile, msg)
		}
	}
	if !skip["listen"] && !skip["http_listen"] {
		if same, ip := sameSocket(c.Listen, c.HTTPListen); same {
			bad("http_listen", "%q is the same socket as listen %q (both are %s)", c.HTTPListen, c.Listen, ip)
		}
	}
	return errs
}

// problemKeys are the keys that have a problem in err (an errors.Join of
// *config.FieldError values).
func problemKeys(errs []error) map[string]bool {
	out := make(map[string]bool)
	for _, e := range errs {
		var fe *config.FieldError
		if errors.As(e, &fe) {
			out[fe.Key] = true
		}
	}
	return out
}

// checkDirTarget says why dir cannot serve as a directory the gateway
// creates if needed, or "".
func checkDirTarget(dir string) string {
	st, err := os.Stat(dir)
	switch {
	case err == nil && !st.IsDir():
		return "is a file, not a directory"
	case err == nil:
		return ""
	}
	return checkCreatable(dir)
}

// checkFileTarget says why path cannot be opened for appending (created
// with its directories if needed), or "".
func checkFileTarget(path string) string {
	st, err := os.Stat(path)
	switch {
	case err == nil && st.IsDir():
		return "is a directory, not a file"
	case err == nil:
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return fmt.Sprintf("cannot be opened for appending: %v", errors.Unwrap(err))
		}
		f.Close()
		return ""
	}
	return checkCreatable(path)
}

// checkCreatable says why path (which cannot be stat'ed) cannot be created,
// or "": its nearest existing ancestor must be a directory we may write
// in. It writes nothing but a probe file it removes again.
func checkCreatable(path string) string {
	dir := filepath.Dir(filepath.Clean(path))
	for {
		st, err := os.Stat(dir)
		if err == nil {
			if !st.IsDir() {
				return fmt.Sprintf("cannot be created: %s is not a directory", dir)
			}
			break
		}
		if errors.Is(err, fs.ErrPermission) {
			return fmt.Sprintf("cannot be created: %v", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "cannot be created: no existing parent directory"
		}
		dir = parent
	}
	f, err := os.CreateTemp(dir, ".mxgateway-check-*")
	if err != nil {
		return fmt.Sprintf("cannot be created: %s is not writable: %v", dir, errors.Unwrap(err))
	}
	f.Close()
	os.Remove(f.Name())
	return ""
}

// sameSocket reports whether two listen addresses bind the same socket once
// their hosts are resolved (localhost and 127.0.0.1, ::ffff:127.0.0.1 and
// 127.0.0.1, a wildcard and anything); ip is the shared address. Port 0,
// different ports and hosts that do not resolve never collide here (the
// bind reports the latter).
func sameSocket(a, b string) (same bool, ip string) {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false, ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	ipsA, ipsB := resolveHost(ctx, ha), resolveHost(ctx, hb)
	for _, x := range ipsA {
		for _, y := range ipsB {
			if x.Equal(y) || x.IsUnspecified() || y.IsUnspecified() {
				return true, net.JoinHostPort(x.String(), pa)
			}
		}
	}
	return false, ""
}

// resolveHost returns the addresses a listen host binds: the unspecified
// address for "", the literal itself, or what the resolver says.
func resolveHost(ctx context.Context, host string) []net.IP {
	if host == "" {
		return []net.IP{net.IPv4zero}
	}
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil {
		return []net.IP{ip}
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil
	}
	out := make([]net.IP, len(addrs))
	for i, a := range addrs {
		out[i] = a.IP
	}
	return out
}
