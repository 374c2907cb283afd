// Command ksdiff checks kstreams against Kafka Streams record for record: it
// generates seeded cases (a topology, its parameters, and input records with
// random keys, out-of-order and late timestamps, and tombstones), runs each
// in Kafka Streams' TopologyTestDriver (the Maven project in java/) and in
// kstreamstest, and compares the outputs.
//
// Usage: go run ./ksdiff [-cases N] [-records N] [-seed S] [-only t1,t2] [-v]
//
// It exits non-zero on any difference, printing each differing case's
// inputs and both outputs; rerun one with -seed and -case. Differences that
// are deliberate (kstreams does better than Kafka Streams) are documented in
// docs/joins.md and modelled in expect.go, so the comparison stays exact.
//
// Needs Java 17+ and Maven (the first run fetches Kafka Streams 4.4.0 from
// Maven Central).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

func main() {
	var (
		cases   = flag.Int("cases", 30, "number of generated cases")
		records = flag.Int("records", 200, "most input records per case")
		seed    = flag.Uint64("seed", 1, "seed of the generated cases")
		only    = flag.String("only", "", "comma-separated topologies to run (default: all)")
		one     = flag.Int("case", -1, "run only the case with this id (with the same -seed, -cases and -only)")
		verbose = flag.Bool("v", false, "print every case's inputs and outputs")
	)
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("ksdiff: ")
	if err := run(*cases, *records, *seed, *only, *one, *verbose); err != nil {
		log.Fatal(err)
	}
}

func run(n, records int, seed uint64, only string, one int, verbose bool) error {
	start := time.Now()
	var names []string
	if only != "" {
		names = strings.Split(only, ",")
		for _, name := range names {
			if !known(name) {
				return fmt.Errorf("-only: unknown topology %q", name)
			}
		}
	}
	cs := generate(seed, n, max(records, 2), names)
	if one >= 0 {
		var sel []*testCase
		for _, c := range cs {
			if c.id == one {
				sel = append(sel, c)
			}
		}
		if len(sel) == 0 {
			return fmt.Errorf("-case %d: no such case among the %d generated", one, len(cs))
		}
		cs, verbose = sel, true
	}
	java, err := javaDir()
	if err != nil {
		return err
	}
	if err := buildJava(java); err != nil {
		return err
	}
	built := time.Now()
	var in bytes.Buffer
	if err := writeCases(&in, cs); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "java", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-cp", filepath.Join(java, "target", "classes")+string(os.PathListSeparator)+filepath.Join(java, "target", "lib", "*"),
		"ksdiff.KsDiff")
	cmd.Stdin = &in
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("running the Kafka Streams side: %w\n%s", err, stderr.String())
	}
	ran := time.Now()
	want, err := readResults(&stdout)
	if err != nil {
		return err
	}
	var (
		inputs, compared, differing int
		missed, missedOf            int // records Kafka Streams failed to write (its bugs), of how many
		perTopology                 = map[string]int{}
	)
	for _, c := range cs {
		inputs += len(c.inputs)
		perTopology[c.topology]++
		w := want[c.id]
		if w == nil {
			return fmt.Errorf("case %d: the Kafka Streams side printed nothing for it", c.id)
		}
		if w.err != "" {
			return fmt.Errorf("case %d (%s): Kafka Streams failed: %s", c.id, c.topology, w.err)
		}
		got, gerr := runGo(c)
		exp, err := expect(c, w.outputs)
		if err != nil {
			return fmt.Errorf("case %d (%s): %w", c.id, c.topology, err)
		}
		expected := exp.outputs
		compared += len(expected)
		missed += exp.missed
		if exp.missed > 0 || strings.HasSuffix(c.topology, "-onclose") {
			missedOf += len(expected)
		}
		var diff string
		if exp.check != nil {
			var late int
			diff, late = exp.check(got)
			missed += late
			missedOf += len(got)
		} else {
			diff = compare(expected, got)
		}
		if gerr != nil {
			diff = fmt.Sprintf("kstreams failed: %v\n%s", gerr, diff)
		}
		if diff != "" {
			differing++
			fmt.Printf("--- case %d (%s %v, seed %d): DIFFERENT\n%s", c.id, c.topology, c.params, seed, diff)
			printCase(c, w.outputs, expected, got)
		} else if verbose {
			fmt.Printf("--- case %d (%s %v): same\n", c.id, c.topology, c.params)
			printCase(c, w.outputs, expected, got)
		}
	}
	fmt.Printf("ksdiff: %d cases (%s), %d input records, %d output records compared, %d cases differ "+
		"(Kafka Streams missed or held back %d of %d records, see docs/joins.md); "+
		"Java built in %v, Kafka Streams ran in %v, kstreams and the comparison in %v (GOMAXPROCS %d)\n",
		len(cs), summary(perTopology), inputs, compared, differing, missed, missedOf,
		built.Sub(start).Round(time.Millisecond), ran.Sub(built).Round(time.Millisecond),
		time.Since(ran).Round(time.Millisecond), runtime.GOMAXPROCS(0))
	if differing > 0 {
		return fmt.Errorf("%d of %d cases differ from Kafka Streams (rerun one with -seed %d -case ID)", differing, len(cs), seed)
	}
	return nil
}

func known(name string) bool {
	for _, t := range topologies {
		if t.name == name {
			return true
		}
	}
	return false
}

func summary(per map[string]int) string {
	var parts []string
	for _, t := range topologies {
		if n := per[t.name]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", t.name, n))
		}
	}
	return strings.Join(parts, ", ")
}

// compare returns "" if got is want, record for record, or a description
// of the first difference.
func compare(want, got []output) string {
	for i := range max(len(want), len(got)) {
		switch {
		case i >= len(want):
			return fmt.Sprintf("output %d: kstreams wrote %v, Kafka Streams nothing more (%d records)\n", i, got[i], len(want))
		case i >= len(got):
			return fmt.Sprintf("output %d: Kafka Streams wrote %v, kstreams nothing more (%d records)\n", i, want[i], len(got))
		case !sameOutput(want[i], got[i]):
			return fmt.Sprintf("output %d: Kafka Streams wrote %v, kstreams %v\n", i, want[i], got[i])
		}
	}
	return ""
}

func sameOutput(a, b output) bool {
	return a.topic == b.topic && str(a.key) == str(b.key) && str(a.value) == str(b.value) && a.ts == b.ts
}

func printCase(c *testCase, ks, expected, got []output) {
	fmt.Printf("  inputs (%d):\n", len(c.inputs))
	for i, in := range c.inputs {
		fmt.Printf("    %3d %v\n", i, in)
	}
	fmt.Printf("  Kafka Streams (%d):\n", len(ks))
	for i, o := range ks {
		fmt.Printf("    %3d %v\n", i, o)
	}
	if len(expected) != len(ks) || compare(ks, expected) != "" {
		fmt.Printf("  expected of kstreams (Kafka Streams' output with the documented differences, %d):\n", len(expected))
		for i, o := range expected {
			fmt.Printf("    %3d %v\n", i, o)
		}
	}
	fmt.Printf("  kstreams (%d):\n", len(got))
	for i, o := range got {
		fmt.Printf("    %3d %v\n", i, o)
	}
}

// javaDir returns the directory of the Maven project, next to this
// program's sources (run from tools/ or the repository root).
func javaDir() (string, error) {
	for _, d := range []string{"ksdiff/java", "tools/ksdiff/java", "java"} {
		if _, err := os.Stat(filepath.Join(d, "pom.xml")); err == nil {
			return filepath.Abs(d)
		}
	}
	return "", fmt.Errorf("cannot find tools/ksdiff/java/pom.xml: run ksdiff from the repository root or tools/")
}

// buildJava runs mvn package unless the classes are newer than the sources.
func buildJava(dir string) error {
	class := filepath.Join(dir, "target", "classes", "ksdiff", "KsDiff.class")
	if ci, err := os.Stat(class); err == nil {
		fresh := true
		for _, src := range []string{"pom.xml", "src/main/java/ksdiff/KsDiff.java"} {
			si, err := os.Stat(filepath.Join(dir, src))
			if err != nil || si.ModTime().After(ci.ModTime()) {
				fresh = false
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "target", "lib")); err == nil && fresh {
			return nil
		}
	}
	cmd := exec.Command("mvn", "-B", "-q", "package")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mvn package in %s: %w\n%s", dir, err, out)
	}
	return nil
}
