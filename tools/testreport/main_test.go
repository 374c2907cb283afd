package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportOfARealRun runs go test -json on a package with passing,
// failing and skipped tests, and checks the plain output and the skips.
func TestReportOfARealRun(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("go not in PATH: %v", err)
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/sample\n\ngo 1.26\n",
		"sample_test.go": `package sample

import "testing"

func TestPasses(t *testing.T) { t.Log("quiet when passing") }

func TestFails(t *testing.T) {
	t.Log("context before the failure")
	t.Fatal("this went wrong")
}

func TestSkipped(t *testing.T) { t.Skip("needs a broker: set SAMPLE_BROKERS") }

func TestSubtests(t *testing.T) {
	t.Run("one", func(t *testing.T) {})
	t.Run("two", func(t *testing.T) { t.Skipf("not on %s", "this platform") })
}
`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "test", "-json", "-count=1", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	out, err := cmd.Output()
	if err == nil {
		t.Fatal("go test passed a package with a failing test")
	}
	var plain bytes.Buffer
	skips, err := report(bytes.NewReader(out), &plain, "sample")
	if err != nil {
		t.Fatal(err)
	}
	got := plain.String()
	for _, want := range []string{"--- FAIL: TestFails", "context before the failure", "this went wrong", "FAIL\texample.com/sample"} {
		if !strings.Contains(got, want) {
			t.Errorf("plain output lacks %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"=== RUN", "quiet when passing", "--- PASS", "--- SKIP"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("plain output has %q, which go test without -v does not print:\n%s", unwanted, got)
		}
	}
	if len(skips) != 2 {
		t.Fatalf("skips %v, want TestSkipped and TestSubtests/two", skips)
	}
	want := map[string]string{
		"TestSkipped":      "needs a broker: set SAMPLE_BROKERS",
		"TestSubtests/two": "not on this platform",
	}
	for _, s := range skips {
		if s.Module != "sample" || s.Package != "example.com/sample" || !strings.Contains(s.Reason, want[s.Test]) {
			t.Errorf("skip %+v; want reason %q", s, want[s.Test])
		}
	}
}

// TestReportPassesThroughOtherLines: lines that are not test events are
// printed as they are; a passing package prints its ok line only, whatever
// its binary printed; the output of a test that never ended is printed.
func TestReportPassesThroughOtherLines(t *testing.T) {
	in := strings.Join([]string{
		`# example.com/broken`,
		`{"Action":"build-output","ImportPath":"example.com/broken","Output":"broken.go:3:1: syntax error\n"}`,
		`{"Action":"start","Package":"example.com/ok"}`,
		`{"Action":"run","Package":"example.com/ok","Test":"TestA"}`,
		`{"Action":"output","Package":"example.com/ok","Test":"TestA","Output":"=== RUN   TestA\n"}`,
		`{"Action":"output","Package":"example.com/ok","Test":"TestA","Output":"--- PASS: TestA (0.00s)\n"}`,
		`{"Action":"pass","Package":"example.com/ok","Test":"TestA"}`,
		`{"Action":"output","Package":"example.com/ok","Output":"PASS\n"}`,
		`{"Action":"output","Package":"example.com/ok","Output":"ok  \texample.com/ok\t0.01s\n"}`,
		`{"Action":"pass","Package":"example.com/ok"}`,
		`{"Action":"output","Package":"example.com/quiet","Output":"testing: warning: no tests to run\n"}`,
		`{"Action":"output","Package":"example.com/quiet","Output":"PASS\n"}`,
		`{"Action":"output","Package":"example.com/quiet","Output":"ok  \texample.com/quiet\t0.01s [no tests to run]\n"}`,
		`{"Action":"pass","Package":"example.com/quiet"}`,
		`{"Action":"output","Package":"example.com/none","Output":"?   \texample.com/none\t[no test files]\n"}`,
		`{"Action":"skip","Package":"example.com/none"}`,
		`{"Action":"run","Package":"example.com/hang","Test":"TestHangs"}`,
		`{"Action":"output","Package":"example.com/hang","Test":"TestHangs","Output":"panic: test timed out\n"}`,
	}, "\n") + "\n"
	var out bytes.Buffer
	skips, err := report(strings.NewReader(in), &out, "m")
	if err != nil || len(skips) != 0 {
		t.Fatalf("report: %v, skips %v", err, skips)
	}
	want := "# example.com/broken\nbroken.go:3:1: syntax error\nok  \texample.com/ok\t0.01s\n" +
		"ok  \texample.com/quiet\t0.01s [no tests to run]\n?   \texample.com/none\t[no test files]\npanic: test timed out\n"
	if out.String() != want {
		t.Fatalf("output:\n%q\nwant\n%q", out.String(), want)
	}
}
