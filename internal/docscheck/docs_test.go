// Package docscheck holds tests that keep the documentation true: the
// packages and names that README.md and docs/porting-from-grpc-go.md
// mention must exist.
package docscheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const root = "../.."

// exportedNames returns the exported top-level names and method names
// declared by the non-test files of the package in dir.
func exportedNames(t *testing.T, dir string) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	names := map[string]bool{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				names[d.Name.Name] = true
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						names[s.Name.Name] = true
					case *ast.ValueSpec:
						for _, n := range s.Names {
							names[n.Name] = true
						}
					}
				}
			}
		}
	}
	return names
}

var (
	importPath = regexp.MustCompile("github\\.com/h2rpc/h2rpc/[A-Za-z0-9_/.-]+")
	ticked     = regexp.MustCompile("`([^`]+)`")
	ident      = regexp.MustCompile(`^(?:grpc\.|rpc\.|cc\.)?([A-Z][A-Za-z0-9]*)(?:\(.*\))?$`)
)

// TestDocumentedPackagesExist checks every github.com/h2rpc/h2rpc/...
// import path in the README and the porting guide.
func TestDocumentedPackagesExist(t *testing.T) {
	for _, doc := range []string{"README.md", "docs/porting-from-grpc-go.md"} {
		b, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range importPath.FindAllString(string(b), -1) {
			p = strings.TrimRight(strings.TrimPrefix(p, "github.com/h2rpc/h2rpc/"), "./")
			if p == "" {
				continue
			}
			if fi, err := os.Stat(filepath.Join(root, p)); err != nil || !fi.IsDir() {
				t.Errorf("%s mentions github.com/h2rpc/h2rpc/%s, which is not a directory of the module", doc, p)
			}
		}
	}
}

// TestPortingGuideNamesExist checks the porting guide's client and server
// tables: a row whose h2rpc column says "same" must name things package
// rpc declares, and every rpc.Name in the h2rpc column must exist.
func TestPortingGuideNamesExist(t *testing.T) {
	rpcNames := exportedNames(t, filepath.Join(root, "rpc"))
	b, err := os.ReadFile(filepath.Join(root, "docs", "porting-from-grpc-go.md"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, line := range strings.Split(string(b), "\n") {
		cols := strings.Split(line, "|")
		if len(cols) < 4 || !strings.HasPrefix(strings.TrimSpace(line), "|") {
			continue
		}
		grpcCol, ourCol := cols[1], strings.TrimSpace(cols[2])
		var want []string
		if strings.HasPrefix(ourCol, "same") {
			for _, m := range ticked.FindAllStringSubmatch(grpcCol, -1) {
				want = append(want, m[1])
			}
		}
		for _, m := range ticked.FindAllStringSubmatch(ourCol, -1) {
			if strings.HasPrefix(m[1], "rpc.") {
				want = append(want, m[1])
			}
		}
		for _, w := range want {
			m := ident.FindStringSubmatch(w)
			if m == nil {
				continue // a package path or an expression, not a name
			}
			checked++
			if !rpcNames[m[1]] {
				t.Errorf("the porting guide promises %s (row %q), but package rpc does not declare %s", w, strings.TrimSpace(line), m[1])
			}
		}
	}
	if checked < 40 {
		t.Errorf("checked only %d names: the table format changed and this test no longer reads it", checked)
	}
}
