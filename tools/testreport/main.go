// Command testreport reads `go test -json` output on stdin and prints what
// `go test` prints without -v: the closing line of each package (ok, no
// test files), and for a failed package its failed tests' output and
// whatever its test binary printed outside tests (FAIL lines, panics);
// build errors. It also appends every skipped test,
// with the reason it gave to t.Skip, to a file, so that tools/test.sh can
// list them at the end of a run.
//
//	go test -json ./... | testreport -module core -skips /tmp/skips
//
// Its exit status is 0 whatever the tests did: use the exit status of go
// test (set -o pipefail).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// event is one line of go test -json (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output events
	Test       string
	Output     string
}

// skip is a skipped test and why.
type skip struct {
	Module, Package, Test, Reason string
}

func (s skip) String() string {
	return fmt.Sprintf("%s  %s  %s: %s", s.Module, s.Package, s.Test, s.Reason)
}

// report turns the events read from r into go test's plain output on w and
// returns the skipped tests.
func report(r io.Reader, w io.Writer, module string) ([]skip, error) {
	var skips []skip
	type key struct{ pkg, test string }
	buffered := map[key][]string{}
	var order []key // tests in the order they first printed, for leftovers
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "build-output":
			fmt.Fprint(w, e.Output)
		case "output":
			// Buffered per test, and per package for what the test binary
			// prints outside tests (Test is empty).
			if _, ok := buffered[k]; !ok {
				order = append(order, k)
			}
			buffered[k] = append(buffered[k], e.Output)
		case "fail":
			// A failed test or package: all it printed.
			for _, o := range buffered[k] {
				if !isProgress(o) && o != "PASS\n" {
					fmt.Fprint(w, o)
				}
			}
			delete(buffered, k)
		case "skip":
			if e.Test != "" {
				skips = append(skips, skip{Module: module, Package: e.Package, Test: e.Test, Reason: skipReason(buffered[k])})
			} else {
				printSummary(w, buffered[k]) // "?   pkg [no test files]"
			}
			delete(buffered, k)
		case "pass":
			if e.Test == "" {
				printSummary(w, buffered[k]) // "ok  pkg 0.1s"
			}
			delete(buffered, k)
		}
	}
	// Output of tests that never ended (a binary that crashed or hung).
	for _, k := range order {
		for _, o := range buffered[k] {
			if !isProgress(o) {
				fmt.Fprint(w, o)
			}
		}
	}
	return skips, sc.Err()
}

// printSummary prints the closing line of a package that passed (or has no
// tests): what go test prints for it without -v.
func printSummary(w io.Writer, lines []string) {
	for _, l := range lines {
		if strings.HasPrefix(l, "ok ") || strings.HasPrefix(l, "? ") {
			fmt.Fprint(w, l)
		}
	}
}

// isProgress reports whether a line is one of the progress lines only -v
// prints.
func isProgress(line string) bool {
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME"} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// skipReason is what a skipped test printed, less the progress and result
// lines: the message given to t.Skip (and anything it logged before).
func skipReason(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || isProgress(l) || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " / ")
}

func main() {
	module := flag.String("module", "", "module name to print with each skipped test")
	skipsFile := flag.String("skips", "", "file to append skipped tests to")
	flag.Parse()
	skips, err := report(os.Stdin, os.Stdout, *module)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport: reading go test -json output:", err)
	}
	if *skipsFile == "" || len(skips) == 0 {
		return
	}
	f, err := os.OpenFile(*skipsFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		return
	}
	defer f.Close()
	for _, s := range skips {
		fmt.Fprintln(f, s)
	}
}
