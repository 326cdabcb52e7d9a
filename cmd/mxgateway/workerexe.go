package main

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// leanWorkerName is the file name of the standalone worker, cmd/mxworker.
// It links only what a worker uses (test/repo TestWorkerIsLean), so a sim
// session costs a fraction of the memory of the gateway re-executed as
// `mxgateway worker`.
func leanWorkerName() string {
	if runtime.GOOS == "windows" {
		return "mxworker.exe"
	}
	return "mxworker"
}

// mainModule is the module whose commands the gateway and mxworker are.
const mainModule = "github.com/mxgateway/mxgateway"

// goRunBuildTimeout bounds the build of the lean worker under `go run`.
const goRunBuildTimeout = 5 * time.Minute

// simWorker is the sim worker when worker_exe is empty, in this order:
//
//  1. mxworker beside the gateway's executable (make build, go install
//     ./cmd/..., mxbench), when it was built from the same source;
//  2. under `go run ./cmd/mxgateway`, mxworker built now beside the gateway
//     (in go run's temporary directory, or in the build cache's directory
//     of this gateway build), so the quick start gets the lean worker with
//     no step of its own;
//  3. the gateway itself, re-executed as `mxgateway worker`.
//
// It returns the executable, the arguments before the worker flags, and
// what was chosen, in words for the log.
func simWorker(log *slog.Logger) (exe string, args []string, how string, err error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, "", fmt.Errorf("serve: find own executable: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(self); err == nil {
		self = resolved
	}
	exe, args, how = simWorkerFor(self, log)
	return exe, args, how, nil
}

// simWorkerFor is simWorker for the gateway executable self.
func simWorkerFor(self string, log *slog.Logger) (exe string, args []string, how string) {
	lean := filepath.Join(filepath.Dir(self), leanWorkerName())
	if _, err := os.Stat(lean); err == nil {
		if why := sameBuild(self, lean); why != "" {
			log.Warn("not using the mxworker beside the gateway: "+why, slog.String("path", lean))
		} else {
			return lean, nil, "mxworker beside the gateway"
		}
	} else if goRunBinary(self, goCache) {
		began := time.Now()
		if err := buildLeanWorker(lean); err != nil {
			log.Warn("could not build mxworker for this go run; sim sessions re-execute the gateway", slog.String("error", err.Error()))
		} else {
			return lean, nil, fmt.Sprintf("mxworker built for this go run in %.1fs", time.Since(began).Seconds())
		}
	}
	return self, []string{"worker"}, "the gateway re-executed as `mxgateway worker` (no usable mxworker beside it)"
}

// goRunBinary reports whether exe was linked by `go run`, which puts the
// program at <temp>/go-build<N>/b001/exe/<name> (removed when the program
// ends), or, when it ran the same build before, runs it from the build
// cache, <GOCACHE>/<2 hex digits>/<hash>-d/<name> (a directory of that one
// build, where the mxworker built beside it is found by the next run).
// cache returns the go command's GOCACHE; it is asked only for that shape.
func goRunBinary(exe string, cache func() string) bool {
	dir := filepath.Dir(exe)
	if filepath.Base(dir) == "exe" && strings.HasPrefix(filepath.Base(filepath.Dir(filepath.Dir(dir))), "go-build") {
		return true
	}
	if !strings.HasSuffix(filepath.Base(dir), "-d") || len(filepath.Base(filepath.Dir(dir))) != 2 {
		return false
	}
	c := cache()
	return c != "" && filepath.Clean(filepath.Dir(filepath.Dir(dir))) == filepath.Clean(c)
}

// goCache is the go command's build cache directory, or "".
func goCache() string {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, goCmd, "env", "GOCACHE").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// sameBuild returns "" when the worker at path was built from the same
// module version and source revision as the gateway at self, or else why
// not. Fields the toolchain did not record compare equal.
func sameBuild(self, path string) string {
	mine, err := buildinfo.ReadFile(self)
	if err != nil {
		return "" // nothing to compare with (a stripped gateway)
	}
	theirs, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("it carries no Go build information (%v)", err)
	}
	if theirs.Main.Path != mine.Main.Path || theirs.Main.Version != mine.Main.Version {
		return fmt.Sprintf("it is %s %s, the gateway %s %s", theirs.Main.Path, theirs.Main.Version, mine.Main.Path, mine.Main.Version)
	}
	for _, key := range []string{"vcs.revision", "vcs.modified"} {
		if a, b := setting(mine, key), setting(theirs, key); a != b {
			return fmt.Sprintf("%s differs (worker %q, gateway %q)", key, b, a)
		}
	}
	return ""
}

func setting(bi *debug.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

// buildLeanWorker builds cmd/mxworker to path with the go command, from
// the module in the working directory (where `go run ./cmd/mxgateway`
// ran), with the gateway's own race setting and without cgo (unless the
// race detector needs it). The packages are the gateway's, already in the
// build cache (but for the few of the standard library that build
// differently without cgo, compiled on the first run), so this is mostly a
// link.
//
// A worker has no use for cgo (it dials a Unix socket or a named pipe and
// resolves no names), and with it the binary is linked against the C
// library (net's cgo resolver): ld.so, libc and malloc arenas cost about
// 1.8 MiB of RSS in every worker (docs/performance.md, "Lean workers").
func buildLeanWorker(path string) error {
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Main.Path != mainModule || bi.Main.Version != "(devel)" {
		return fmt.Errorf("not built from the %s source tree", mainModule)
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return err
	}
	args := []string{"build"}
	if setting(bi, "-race") == "true" {
		args = append(args, "-race")
	}
	tmp := path + ".tmp"
	args = append(args, "-o", tmp, mainModule+"/cmd/mxworker")
	ctx, cancel := context.WithTimeout(context.Background(), goRunBuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Env = os.Environ()
	if v := leanWorkerCgo(setting(bi, "-race") == "true", setting(bi, "CGO_ENABLED")); v != "" {
		cmd.Env = append(cmd.Env, "CGO_ENABLED="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("go %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return os.Rename(tmp, path)
}

// leanWorkerCgo is the CGO_ENABLED the lean worker is built with: "0",
// unless the gateway runs with the race detector, which needs cgo; then
// the gateway's own setting ("" when it recorded none: the go command's
// default).
func leanWorkerCgo(race bool, gatewayCgo string) string {
	if race {
		return gatewayCgo
	}
	return "0"
}
