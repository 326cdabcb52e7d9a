package repo

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

type listedPackage struct {
	ImportPath string
	Name       string
	Doc        string
	Deps       []string
	Imports    []string
}

func goList(t *testing.T, env []string, args ...string) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	cmd.Dir = "../.."
	cmd.Env = append(cmd.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bufio.NewReader(bytes.NewReader(out)))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestEveryPackageHasDoc fails when a package (on any target we build)
// lacks a package doc comment.
func TestEveryPackageHasDoc(t *testing.T) {
	targets := [][]string{
		{"GOOS=linux", "GOARCH=amd64"},
		{"GOOS=windows", "GOARCH=386"},
		{"GOOS=windows", "GOARCH=amd64"},
	}
	for _, env := range targets {
		for _, p := range goList(t, env, "./...") {
			if p.Doc == "" {
				t.Errorf("%s (%s): package %s has no doc comment", p.ImportPath, strings.Join(env, " "), p.Name)
			}
		}
	}
}

// TestImportsFollowDataFlow pins the dependency rules of STYLE.md.
func TestImportsFollowDataFlow(t *testing.T) {
	const mod = "github.com/mxgateway/mxgateway/"
	rules := []struct {
		pkg       string
		forbidden []string
	}{
		{pkg: "./client/...", forbidden: []string{mod + "internal/"}},
		{pkg: "./cmd/mxworker", forbidden: []string{
			mod + "internal/store", mod + "internal/gateway", mod + "internal/session",
			mod + "internal/auth", "modernc.org/sqlite", "github.com/prometheus/client_golang",
		}},
		{pkg: "./internal/worker", forbidden: []string{
			mod + "internal/store", mod + "internal/gateway", mod + "internal/session",
			mod + "internal/workerclient", mod + "internal/supervisor", "modernc.org/sqlite",
		}},
		{pkg: "./internal/backend/...", forbidden: []string{
			mod + "internal/frame", mod + "internal/worker", mod + "internal/gateway", "google.golang.org/grpc/server",
		}},
	}
	for _, env := range [][]string{{"GOOS=linux", "GOARCH=amd64"}, {"GOOS=windows", "GOARCH=386"}} {
		for _, r := range rules {
			for _, p := range goList(t, env, r.pkg) {
				for _, d := range p.Deps {
					for _, f := range r.forbidden {
						if forbidden(d, f) {
							t.Errorf("%s (%s) depends on %s", p.ImportPath, strings.Join(env, " "), d)
						}
					}
				}
			}
		}
	}
}

// forbidden reports whether dependency dep matches rule f: a rule ending in
// "/" forbids everything below it; otherwise the package and its children.
func forbidden(dep, f string) bool {
	if strings.HasSuffix(f, "/") {
		return strings.HasPrefix(dep, f)
	}
	return dep == f || strings.HasPrefix(dep, f+"/")
}
