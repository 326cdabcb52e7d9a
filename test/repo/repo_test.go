package repo

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
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

const module = "github.com/mxgateway/mxgateway"

var update = flag.Bool("update", false, "rewrite testdata/imports.golden from the import graph, keeping the reasons written in it")

// goldenFile pins the import graph.
const goldenFile = "testdata/imports.golden"

// buildTargets are the targets whose imports the golden list covers.
var buildTargets = [][]string{
	{"GOOS=linux", "GOARCH=amd64"},
	{"GOOS=windows", "GOARCH=386"},
	{"GOOS=windows", "GOARCH=amd64"},
}

// TestImportGraph pins the import graph (STYLE.md §1, §3: data flows one
// way): the imports of every package's non-test files, on every target,
// must be exactly those testdata/imports.golden allows — module packages
// by path, third-party ones by module. A new import shows up here as a
// diff to review; an edge that does not follow the data flow carries its
// reason in the golden file.
func TestImportGraph(t *testing.T) {
	mods := requiredModules(t)
	got := map[string]map[string]bool{}
	for _, env := range buildTargets {
		for _, p := range goList(t, env, "./...") {
			pkg := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
			if got[pkg] == nil {
				got[pkg] = map[string]bool{}
			}
			for _, imp := range p.Imports {
				if name, ok := importName(imp, mods); ok {
					got[pkg][name] = true
				}
			}
		}
	}
	golden, err := readGolden(goldenFile)
	if err != nil && !*update {
		t.Fatal(err)
	}
	if *update {
		if err := writeGolden(goldenFile, got, golden); err != nil {
			t.Fatal(err)
		}
		return
	}
	var problems []string
	for _, pkg := range sortedKeys(got, golden) {
		for _, imp := range sortedKeys(got[pkg], golden[pkg]) {
			_, allowed := golden[pkg][imp]
			switch {
			case got[pkg][imp] && !allowed:
				problems = append(problems, fmt.Sprintf("+ %s imports %s, which %s does not allow", pkg, imp, goldenFile))
			case !got[pkg][imp] && allowed:
				problems = append(problems, fmt.Sprintf("- %s no longer imports %s: remove it from %s", pkg, imp, goldenFile))
			}
		}
	}
	if len(problems) > 0 {
		t.Fatalf("the import graph changed (go test ./test/repo -run TestImportGraph -update rewrites the golden file; "+
			"write why beside an edge that crosses the data flow):\n%s", strings.Join(problems, "\n"))
	}
}

// importName is how the golden file names an import: a module package by
// its path inside the module, a third-party package by its module; false
// for the standard library.
func importName(imp string, mods []string) (string, bool) {
	first, _, _ := strings.Cut(imp, "/")
	if !strings.Contains(first, ".") {
		return "", false
	}
	if rest, ok := strings.CutPrefix(imp, module+"/"); ok {
		return rest, true
	}
	best := ""
	for _, m := range mods {
		if (imp == m || strings.HasPrefix(imp, m+"/")) && len(m) > len(best) {
			best = m
		}
	}
	if best == "" {
		return imp, true
	}
	return best, true
}

// requiredModules lists the modules go.mod requires.
func requiredModules(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var mods []string
	inBlock := false
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "require (":
			inBlock = true
			continue
		case line == ")":
			inBlock = false
			continue
		case strings.HasPrefix(line, "require "):
			line = strings.TrimPrefix(line, "require ")
		case !inBlock:
			continue
		}
		if f := strings.Fields(line); len(f) >= 2 {
			mods = append(mods, f[0])
		}
	}
	return mods
}

// readGolden parses the golden file: a package path at the start of a
// line, then its allowed imports indented, each optionally followed by
// "# reason".
func readGolden(path string) (map[string]map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]string{}
	pkg := ""
	for n, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		entry, reason, _ := strings.Cut(line, "#")
		entry = strings.TrimSpace(entry)
		if !strings.HasPrefix(line, "\t") {
			pkg = entry
			if out[pkg] == nil {
				out[pkg] = map[string]string{}
			}
			continue
		}
		if pkg == "" {
			return nil, fmt.Errorf("%s:%d: an import before any package", path, n+1)
		}
		out[pkg][entry] = strings.TrimSpace(reason)
	}
	return out, nil
}

// writeGolden writes the graph got, keeping the reasons old has for the
// edges that remain.
func writeGolden(path string, got map[string]map[string]bool, old map[string]map[string]string) error {
	var b strings.Builder
	b.WriteString(goldenHeader)
	for _, pkg := range sortedKeys[map[string]bool, bool](got, nil) {
		b.WriteString("\n" + pkg + "\n")
		for _, imp := range sortedKeys[bool, bool](got[pkg], nil) {
			b.WriteString("\t" + imp)
			if r := old[pkg][imp]; r != "" {
				b.WriteString("  # " + r)
			}
			b.WriteString("\n")
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

const goldenHeader = `# The allowed imports of every package of the module (non-test files, on
# linux/amd64, windows/386 and windows/amd64): module packages by path,
# third-party ones by module. TestImportGraph fails on any difference.
# Refresh with: go test ./test/repo -run TestImportGraph -update
#
# Data flows one way (STYLE.md): client -> gateway -> session -> supervisor
# / workerclient -> worker -> backend, over shared leaves (api/..., protocol,
# frame, itemtable, logging, buildinfo). An edge that does not follow that
# flow says why after "#".
`

func sortedKeys[V any, W any](a map[string]V, b map[string]W) []string {
	seen := map[string]bool{}
	for k := range a {
		seen[k] = true
	}
	for k := range b {
		seen[k] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
