package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestCasesRoundTripThroughTheJavaFormat(t *testing.T) {
	cs := generate(7, 12, 40, nil)
	var buf bytes.Buffer
	if err := writeCases(&buf, cs); err != nil {
		t.Fatal(err)
	}
	// The Java side echoes inputs of the shape it reads; here the inputs
	// are turned into out lines to check that nulls and fields survive.
	var echo strings.Builder
	for line := range strings.SplitSeq(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		f := strings.Split(line, "\t")
		switch f[0] {
		case "case":
			echo.WriteString("case\t" + f[1] + "\n")
		case "in":
			echo.WriteString("out\t" + strings.Join(f[1:], "\t") + "\t0\n")
		case "end":
			echo.WriteString("end\n")
		}
	}
	res, err := readResults(strings.NewReader(echo.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(cs) {
		t.Fatalf("%d cases read back, want %d", len(res), len(cs))
	}
	nulls := 0
	for _, c := range cs {
		r := res[c.id]
		if r == nil || len(r.outputs) != len(c.inputs) {
			t.Fatalf("case %d: read back %v", c.id, r)
		}
		for i, in := range c.inputs {
			o := r.outputs[i]
			if o.topic != in.topic || str(o.key) != str(in.key) || str(o.value) != str(in.value) || o.ts != in.ts {
				t.Fatalf("case %d input %d: %v read back as %v", c.id, i, in, o)
			}
			if in.value == nil {
				nulls++
			}
		}
	}
	if nulls == 0 {
		t.Fatal("no tombstone generated in 12 cases")
	}
}

func TestReadResultsRejectsMalformedOutput(t *testing.T) {
	for _, bad := range []string{
		"out\tout\tk\tv\t1\n",                     // outside a case
		"case\t1\nout\tout\tk\tv\t1\n",            // 5 fields
		"case\t1\nout\tout\tk\tv\tx\t0\nend\n",    // bad timestamp
		"case\t1\n",                               // no end
		"case\t1\nend\ncase\t1\nend\n",            // twice
		"case\t1\ncase\t2\nend\n",                 // nested
		"case\tx\nend\n",                          // bad id
		"case\t1\nwhat\nend\n",                    // unknown kind
		"error\tboom\n",                           // error outside a case
		"end\n",                                   // end outside a case
		"case\t1\nout\tout\tk\tv\t1\t2\t3\nend\n", // 7 fields
		"case\t1\nout\tout\tk\tv\t1\t-1\nend\n",   // negative input index
	} {
		if _, err := readResults(strings.NewReader(bad)); err == nil {
			t.Errorf("readResults(%q) = nil error", bad)
		}
	}
	res, err := readResults(strings.NewReader("case\t3\nerror\tjava.lang.IllegalStateException: x\nend\n"))
	if err != nil || res[3] == nil || !strings.Contains(res[3].err, "IllegalStateException") {
		t.Fatalf("an error line: %v, %v", res, err)
	}
}

func out(topic, key, value string, ts int64) output {
	return output{topic: topic, key: &key, value: &value, ts: ts}
}

func TestExpectOnClose(t *testing.T) {
	ks := []output{
		out("final", "a@0/10", "1", 5),
		out("out", "b@0/10", "2", 7),
		out("final", "b@0/10", "2", 7),
	}
	e, err := expect(&testCase{topology: "count-onclose"}, ks)
	if err != nil {
		t.Fatal(err)
	}
	want := []output{out("out", "a@0/10", "1", 5), out("out", "b@0/10", "2", 7)}
	if d := compare(want, e.outputs); d != "" || e.missed != 1 {
		t.Fatalf("expected %v (missed %d): %s", e.outputs, e.missed, d)
	}
	// onWindowClose writing what suppress did not is not explained.
	ks = append(ks, out("out", "c@0/10", "1", 8))
	if _, err := expect(&testCase{topology: "count-onclose"}, ks); err == nil {
		t.Fatal("an onWindowClose record suppress did not write was accepted")
	}
}

func TestCompare(t *testing.T) {
	a := []output{out("out", "k", "1", 1), out("out", "k", "2", 2)}
	if d := compare(a, a); d != "" {
		t.Fatal(d)
	}
	for _, b := range [][]output{
		a[:1],
		{out("out", "k", "1", 1), out("out", "k", "2", 3)},
		{out("out", "k", "1", 1), out("out", "k", "3", 2)},
		{out("out", "k", "1", 1), {topic: "out", key: a[1].key, ts: 2}},
		append(a, out("out", "k", "3", 3)),
	} {
		if compare(a, b) == "" {
			t.Errorf("compare(%v, %v) found no difference", a, b)
		}
	}
}

// TestGoSideRunsEveryTopology runs each topology's Go side on generated
// inputs: it builds, and writes records.
func TestGoSideRunsEveryTopology(t *testing.T) {
	for _, tp := range topologies {
		cs := generate(3, 1, 60, []string{tp.name})
		got, err := runGo(cs[0])
		if err != nil {
			t.Fatalf("%s: %v", tp.name, err)
		}
		if len(got) == 0 {
			t.Fatalf("%s: no output for %d inputs", tp.name, len(cs[0].inputs))
		}
	}
}
