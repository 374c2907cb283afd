package kstreams_test

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"strings"
	"testing"
)

// TestGuideShowsCompiledCode keeps docs/guide.md and guide_example_test.go
// equal: every Go block of the guide is in the example file word for word
// (a declaration as it stands, or an Example's body one tab less), and
// every declaration of the example file is shown in the guide (an
// Example_guide function as its body). So the guide's code compiles, and
// the output it shows is what go test checks.
func TestGuideShowsCompiledCode(t *testing.T) {
	guide, err := os.ReadFile("../docs/guide.md")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("docs/guide.md is outside module core: run the test in the repository")
	}
	if err != nil {
		t.Fatal(err)
	}
	blocks := goBlocks(string(guide))
	if len(blocks) < 10 {
		t.Fatalf("docs/guide.md has %d Go blocks; expected the guide's code (at least 10)", len(blocks))
	}

	const file = "guide_example_test.go"
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}

	// The file's shown parts: each declaration (with its doc comment) as
	// it stands, and each Example_guide function as its body.
	var parts []string
	for _, d := range f.Decls {
		if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.IMPORT {
			continue
		}
		if fd, ok := d.(*ast.FuncDecl); ok && strings.HasPrefix(fd.Name.Name, "Example_guide") {
			parts = append(parts, funcBody(t, fset, f, src, fd.Name.Name))
			continue
		}
		start := d.Pos()
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Doc != nil {
				start = d.Doc.Pos()
			}
		case *ast.GenDecl:
			if d.Doc != nil {
				start = d.Doc.Pos()
			}
		}
		parts = append(parts, string(src[fset.Position(start).Offset:fset.Position(d.End()).Offset])+"\n")
	}
	for i, part := range parts {
		if !containedIn(part, blocks) {
			t.Errorf("%s: part %d is not shown in docs/guide.md (copy it into a Go block):\n%s", file, i+1, part)
		}
	}

	text := string(src)
	for i, b := range blocks {
		if !strings.Contains(text, b) && !strings.Contains(text, indent(b)) {
			t.Errorf("docs/guide.md: Go block %d is not in %s word for word (as a declaration, or an Example's body one tab less):\n%s", i+1, file, b)
		}
	}
}

// goBlocks returns the contents of the ```go blocks of a Markdown text.
func goBlocks(md string) []string {
	var blocks []string
	for {
		_, after, ok := strings.Cut(md, "```go\n")
		if !ok {
			return blocks
		}
		block, rest, ok := strings.Cut(after, "```\n")
		if !ok {
			return blocks
		}
		blocks = append(blocks, block)
		md = rest
	}
}

// indent prefixes every non-empty line of s with a tab.
func indent(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "\n" && l != "" {
			lines[i] = "\t" + l
		}
	}
	return strings.Join(lines, "")
}

func containedIn(part string, blocks []string) bool {
	for _, b := range blocks {
		if strings.Contains(b, part) {
			return true
		}
	}
	return false
}
