package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func TestGoRunBinary(t *testing.T) {
	cache := func() string { return "/root/.cache/go-build" }
	cases := map[string]bool{
		"/root/.cache/go-build/b7/b7cf768f2872-d/mxgateway":  true, // go run of a build it ran before
		"/root/.cache/other/b7/b7cf768f2872-d/mxgateway":     false,
		"/root/.cache/go-build/b7x/b7cf768f2872-d/mxgateway": false,
		"/tmp/go-build2026626/b001/exe/mxgateway":            true,
		`C:\Temp\go-build99\b001\exe\mxgateway.exe`:          filepath.Separator == '\\',
		"/usr/local/bin/mxgateway":                           false,
		"/tmp/go-build2026626/b001/mxgateway.test":           false,
		"/home/me/exe/mxgateway":                             false,
		"/home/me/go-build-tools/b001/exe/mxgateway":         true, // the shape is all go run leaves
		"/tmp/mxg-e2e-123/bin/mxgateway":                     false,
		"/tmp/go-build2026626/b001/exe/sub/exe/mxgateway":    false,
	}
	for path, want := range cases {
		if got := goRunBinary(path, cache); got != want {
			t.Errorf("goRunBinary(%s) = %v, want %v", path, got, want)
		}
	}
}

// copyFile copies src to dst with mode 0755.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSimWorkerPrefersTheLeanWorkerBesideTheGateway(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	gw := filepath.Join(dir, "mxgateway")
	copyFile(t, self, gw)

	// Nothing beside it: the gateway re-executes itself.
	exe, args, _ := simWorkerFor(gw, log)
	if exe != gw || len(args) != 1 || args[0] != "worker" {
		t.Fatalf("no mxworker: worker %s %q, want %s worker", exe, args, gw)
	}

	// A worker of the same build (a copy carries the same build
	// information): used, with no subcommand.
	lean := filepath.Join(dir, leanWorkerName())
	copyFile(t, self, lean)
	exe, args, how := simWorkerFor(gw, log)
	if exe != lean || len(args) != 0 {
		t.Fatalf("same-build mxworker: worker %s %q (%s), want %s", exe, args, how, lean)
	}

	// A file without Go build information (a stale or foreign program):
	// not used.
	if err := os.WriteFile(lean, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	exe, args, _ = simWorkerFor(gw, log)
	if exe != gw || len(args) != 1 || args[0] != "worker" {
		t.Fatalf("foreign mxworker: worker %s %q, want %s worker", exe, args, gw)
	}
}

func TestSameBuild(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if why := sameBuild(self, self); why != "" {
		t.Errorf("a binary differs from itself: %s", why)
	}
	other := filepath.Join(t.TempDir(), "other")
	if err := os.WriteFile(other, []byte("not a Go program"), 0o755); err != nil {
		t.Fatal(err)
	}
	if why := sameBuild(self, other); why == "" {
		t.Error("a file without build information passed as the same build")
	}
}

func TestLeanWorkerBuiltWithoutCgo(t *testing.T) {
	for _, c := range []struct {
		race      bool
		gateway   string
		wantBuild string
	}{
		{false, "1", "0"},
		{false, "0", "0"},
		{false, "", "0"},
		{true, "1", "1"}, // the race detector needs cgo
		{true, "", ""},
	} {
		if got := leanWorkerCgo(c.race, c.gateway); got != c.wantBuild {
			t.Errorf("leanWorkerCgo(race %v, gateway %q) = %q, want %q", c.race, c.gateway, got, c.wantBuild)
		}
	}
}
