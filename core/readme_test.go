package kstreams_test

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestReadmeShowsTheExample keeps the README's "A topology" program equal
// to ExampleNewApp, which go test runs: the program's main is the
// example's body (without its Output comment), and it imports exactly the
// packages that body uses, under the paths the example file imports them
// from. So the README's code compiles and works as shown.
func TestReadmeShowsTheExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("README.md is outside module core: run the test in the repository")
	}
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- README snippet: the body of ExampleNewApp"
	_, after, ok := strings.Cut(string(readme), marker)
	if !ok {
		t.Fatalf("README.md has no %q marker before the example", marker)
	}
	_, block, ok := strings.Cut(after, "```go\n")
	if ok {
		block, _, ok = strings.Cut(block, "```\n")
	}
	if !ok {
		t.Fatal("no Go code block after the README marker")
	}
	fset := token.NewFileSet()
	prog, err := parser.ParseFile(fset, "README.md", block, parser.ParseComments)
	if err != nil {
		t.Fatalf("the README's program does not parse: %v", err)
	}
	mainBody := funcBody(t, fset, prog, []byte(block), "main")

	src, err := os.ReadFile("example_app_test.go")
	if err != nil {
		t.Fatal(err)
	}
	example, err := parser.ParseFile(fset, "example_app_test.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	exampleBody, _, _ := strings.Cut(funcBody(t, fset, example, src, "ExampleNewApp"), "\n// Output:")
	exampleBody = strings.TrimRight(exampleBody, "\n") + "\n"
	if mainBody != exampleBody {
		t.Errorf("the README's main differs from ExampleNewApp's body; copy the body into README.md.\nREADME:\n%s\nexample:\n%s", mainBody, exampleBody)
	}

	// Imports: exactly those the body uses, with the example file's paths.
	imported := imports(example)
	want := map[string]string{}
	var decl *ast.FuncDecl
	for _, d := range example.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "ExampleNewApp" {
			decl = fd
		}
	}
	ast.Inspect(decl.Body, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && id.Obj == nil {
				if path, ok := imported[id.Name]; ok {
					want[id.Name] = path
				}
			}
		}
		return true
	})
	got := imports(prog)
	if !maps.Equal(got, want) {
		t.Errorf("the README's program imports %v, want %v (what main uses)", slices.Sorted(maps.Values(got)), slices.Sorted(maps.Values(want)))
	}
}

// funcBody returns the source between the braces of function name,
// without the first and last line breaks, one tab of indentation removed.
func funcBody(t *testing.T, fset *token.FileSet, f *ast.File, src []byte, name string) string {
	t.Helper()
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == name {
			body := string(src[fset.Position(fd.Body.Lbrace).Offset+2 : fset.Position(fd.Body.Rbrace).Offset])
			lines := strings.SplitAfter(body, "\n")
			for i, l := range lines {
				lines[i] = strings.TrimPrefix(l, "\t")
			}
			return strings.Join(lines, "")
		}
	}
	t.Fatalf("no function %s", name)
	return ""
}

// imports maps the names under which f imports packages to their paths.
func imports(f *ast.File) map[string]string {
	m := map[string]string{}
	for _, is := range f.Imports {
		path, _ := strconv.Unquote(is.Path.Value)
		name := path[strings.LastIndex(path, "/")+1:]
		if is.Name != nil {
			name = is.Name.Name
		}
		m[name] = path
	}
	return m
}
