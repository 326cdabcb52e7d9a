package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The message package and the stub package it is split from.
const (
	msgImport = "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	msgName   = "mxgatewayv1"
	stubName  = "mxgatewayv1grpc"
)

func main() {
	msgDir := flag.String("messages", "api/mxgateway/v1", "directory of the message package")
	stubDir := flag.String("stubs", "api/mxgateway/v1/mxgatewayv1grpc", "directory of the generated stubs, rewritten in place")
	flag.Parse()
	if err := run(*msgDir, *stubDir); err != nil {
		fmt.Fprintln(os.Stderr, "grpcpkg:", err)
		os.Exit(1)
	}
}

func run(msgDir, stubDir string) error {
	names, err := packageTypes(msgDir)
	if err != nil {
		return err
	}
	stubs, err := filepath.Glob(filepath.Join(stubDir, "*_grpc.pb.go"))
	if err != nil {
		return err
	}
	if len(stubs) == 0 {
		return fmt.Errorf("no *_grpc.pb.go file in %s", stubDir)
	}
	for _, path := range stubs {
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out, err := rewrite(path, src, names)
		if err != nil {
			return err
		}
		if !bytes.Equal(out, src) {
			if err := os.WriteFile(path, out, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// packageTypes returns the names of the types the generated message code
// declares (messages, enums, oneof wrappers).
func packageTypes(dir string) (map[string]bool, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.pb.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	names := map[string]bool{}
	for _, path := range files {
		if strings.HasSuffix(path, "_grpc.pb.go") {
			return nil, fmt.Errorf("%s: stubs are still in the message package", path)
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		if f.Name.Name != msgName {
			return nil, fmt.Errorf("%s: package %s, want %s", path, f.Name.Name, msgName)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.TYPE {
				continue
			}
			for _, s := range g.Specs {
				names[s.(*ast.TypeSpec).Name.Name] = true
			}
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no generated type in %s", dir)
	}
	return names, nil
}

// rewrite renames the stub file's package and qualifies the message types
// it refers to. An identifier is a message type when it names a type of the
// message package and the parser could not resolve it inside the file: the
// stubs' own declarations, parameters and locals resolve, and selector
// names and composite-literal keys are never references.
func rewrite(path string, src []byte, names map[string]bool) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	if f.Name.Name != msgName && f.Name.Name != stubName {
		return nil, fmt.Errorf("%s: package %s, want %s", path, f.Name.Name, msgName)
	}
	f.Name.Name = stubName
	skip := map[*ast.Ident]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			skip[n.Sel] = true
		case *ast.CompositeLit:
			for _, e := range n.Elts {
				if kv, ok := e.(*ast.KeyValueExpr); ok {
					if id, ok := kv.Key.(*ast.Ident); ok {
						skip[id] = true
					}
				}
			}
		}
		return true
	})
	qualified := false
	for _, id := range f.Unresolved {
		if skip[id] || !names[id.Name] {
			continue
		}
		// The printer writes an identifier's name as it is, so the
		// qualified name prints as the selector it stands for.
		id.Name = msgName + "." + id.Name
		qualified = true
	}
	if qualified && !importsPath(f, msgImport) {
		addImport(f, msgName, msgImport)
	}
	var buf bytes.Buffer
	if err := format.Node(&buf, fset, f); err != nil {
		return nil, err
	}
	// Format again so that the added import is sorted and aligned.
	return format.Source(buf.Bytes())
}

func importsPath(f *ast.File, path string) bool {
	return slices.ContainsFunc(f.Imports, func(s *ast.ImportSpec) bool { return s.Path.Value == strconv.Quote(path) })
}

// addImport adds a named import to the file's first import declaration.
func addImport(f *ast.File, name, path string) {
	spec := &ast.ImportSpec{Name: ast.NewIdent(name), Path: &ast.BasicLit{Kind: token.STRING, Value: strconv.Quote(path)}}
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.IMPORT {
			g.Specs = append(g.Specs, spec)
			f.Imports = append(f.Imports, spec)
			return
		}
	}
	f.Decls = append([]ast.Decl{&ast.GenDecl{Tok: token.IMPORT, Specs: []ast.Spec{spec}}}, f.Decls...)
	f.Imports = append(f.Imports, spec)
}
