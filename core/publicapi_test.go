package kstreams_test

import (
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestNoInternalTypeInPublicAPI loads the types of every public package of
// the module (every package outside internal/ directories) and fails for each
// exported identifier that is an alias of a type of an internal package, or
// whose type, signature, exported fields or exported methods mention one:
// users cannot name such types, and go doc does not document them.
func TestNoInternalTypeInPublicAPI(t *testing.T) {
	const module = "github.com/kstreams-go/kstreams/core"
	var pkgs []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != "." && (name == "internal" || name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			return filepath.SkipDir
		}
		if path != "." {
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
		}
		files, _ := filepath.Glob(filepath.Join(path, "*.go"))
		if slices.ContainsFunc(files, func(f string) bool { return !strings.HasSuffix(f, "_test.go") }) {
			pkgs = append(pkgs, strings.TrimSuffix(module+"/"+filepath.ToSlash(path), "/."))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pkgs, module) || !slices.Contains(pkgs, module+"/window") {
		t.Fatalf("found packages %v; want the module's public packages, core and core/window among them", pkgs)
	}
	// Import the packages from the export data the go command builds (fast,
	// and cached), not from source.
	out, err := exec.Command("go", append([]string{"list", "-export", "-deps", "-f", "{{.ImportPath}}={{.Export}}"}, pkgs...)...).Output()
	if err != nil {
		t.Fatalf("go list -export: %v", err)
	}
	exports := map[string]string{}
	for line := range strings.Lines(string(out)) {
		path, file, _ := strings.Cut(strings.TrimSpace(line), "=")
		exports[path] = file
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		file := exports[path]
		if file == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(file)
	})
	for _, path := range pkgs {
		pkg, err := imp.Import(path)
		if err != nil {
			t.Fatalf("importing %s: %v", path, err)
		}
		for _, p := range internalInAPI(pkg) {
			t.Errorf("%s.%s", pkg.Name(), p)
		}
	}
	// The check must see what it checks for: an alias of an internal type.
	if got := internalInAPI(aliasOfInternal(t, fset, imp)); len(got) == 0 {
		t.Error("the check finds nothing in a package that aliases an internal type")
	}
}

// aliasOfInternal type-checks a package that exports an alias of an
// internal type, to show that the check finds one.
func aliasOfInternal(t *testing.T, fset *token.FileSet, imp types.Importer) *types.Package {
	src := `package bad
import "github.com/kstreams-go/kstreams/core/internal/graph"
type Order = graph.Order
func Nodes() []*graph.Node { return nil }`
	f, err := parser.ParseFile(fset, "bad.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	conf := types.Config{Importer: imp}
	pkg, err := conf.Check("github.com/kstreams-go/kstreams/core/bad", fset, []*ast.File{f}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pkg
}

func isInternal(pkg *types.Package) bool {
	return pkg != nil && (strings.Contains(pkg.Path(), "/internal/") || strings.HasSuffix(pkg.Path(), "/internal"))
}

// internalInAPI returns a description of each exported identifier of pkg
// that exposes a type of an internal package.
func internalInAPI(pkg *types.Package) []string {
	var problems []string
	scope := pkg.Scope()
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Exported() {
			continue
		}
		if tn, ok := obj.(*types.TypeName); ok && tn.IsAlias() {
			if n, ok := types.Unalias(tn.Type()).(*types.Named); ok && isInternal(n.Obj().Pkg()) {
				problems = append(problems, fmt.Sprintf("%s is an alias of %s", name, n))
				continue
			}
		}
		w := &apiWalker{home: pkg, seen: map[types.Type]bool{}}
		if tn, ok := obj.(*types.TypeName); ok {
			w.walkDecl(tn.Type())
		} else {
			w.walk(obj.Type())
		}
		for _, found := range w.found {
			problems = append(problems, fmt.Sprintf("%s exposes %s", name, found))
		}
	}
	return problems
}

// apiWalker walks the parts of a type a user sees: an internal named type
// anywhere in them is a problem. Named types of the module's public
// packages are walked as declared (exported fields and methods); types of
// other modules are not walked.
type apiWalker struct {
	home  *types.Package
	seen  map[types.Type]bool
	found []string
}

func (w *apiWalker) walkDecl(t types.Type) {
	n, ok := types.Unalias(t).(*types.Named)
	if !ok {
		w.walk(t)
		return
	}
	if w.seen[n] {
		return
	}
	w.seen[n] = true
	w.walk(n.Underlying())
	for m := range n.Methods() {
		if m.Exported() {
			w.walk(m.Type())
		}
	}
	if tp := n.TypeParams(); tp != nil {
		for p := range tp.TypeParams() {
			w.walk(p.Constraint())
		}
	}
}

func (w *apiWalker) walk(t types.Type) {
	switch t := types.Unalias(t).(type) {
	case *types.Named:
		if isInternal(t.Obj().Pkg()) {
			w.found = append(w.found, t.String())
			return
		}
		if args := t.TypeArgs(); args != nil {
			for a := range args.Types() {
				w.walk(a)
			}
		}
		if pkg := t.Obj().Pkg(); pkg != nil && samePrefix(pkg.Path(), w.home.Path()) {
			w.walkDecl(t.Origin())
		}
	case *types.Pointer:
		w.walk(t.Elem())
	case *types.Slice:
		w.walk(t.Elem())
	case *types.Array:
		w.walk(t.Elem())
	case *types.Map:
		w.walk(t.Key())
		w.walk(t.Elem())
	case *types.Chan:
		w.walk(t.Elem())
	case *types.Signature:
		for v := range t.Params().Variables() {
			w.walk(v.Type())
		}
		for v := range t.Results().Variables() {
			w.walk(v.Type())
		}
		if tp := t.TypeParams(); tp != nil {
			for p := range tp.TypeParams() {
				w.walk(p.Constraint())
			}
		}
	case *types.Struct:
		for f := range t.Fields() {
			if f.Exported() {
				w.walk(f.Type())
			}
		}
	case *types.Interface:
		for m := range t.Methods() {
			if m.Exported() {
				w.walk(m.Type())
			}
		}
		for e := range t.EmbeddedTypes() {
			w.walk(e)
		}
	case *types.Union:
		for term := range t.Terms() {
			w.walk(term.Type())
		}
	}
}

// samePrefix reports whether both paths are in the module
// github.com/kstreams-go/kstreams/core.
func samePrefix(a, b string) bool {
	const module = "github.com/kstreams-go/kstreams/core"
	in := func(p string) bool { return p == module || strings.HasPrefix(p, module+"/") }
	return in(a) && in(b)
}
