package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// A testCase is one topology with its parameters and its generated input
// records, run on both sides.
type testCase struct {
	id       int
	topology string
	params   []param // in a fixed order, so the case prints the same every run
	inputs   []input
}

type param struct {
	name  string
	value int64
}

func (c *testCase) param(name string) int64 {
	for _, p := range c.params {
		if p.name == name {
			return p.value
		}
	}
	panic(fmt.Sprintf("case %d (%s): no parameter %s", c.id, c.topology, name))
}

// input is one record piped into a topic; a nil key or value is a Kafka
// null (a tombstone when the value is nil).
type input struct {
	topic string
	key   *string
	value *string
	ts    int64 // Unix milliseconds
}

// output is one record a topology wrote, as text: both sides format their
// keys and values the same way (see the Java side's build and goTopology).
type output struct {
	topic string
	key   *string
	value *string
	ts    int64
	in    int // the index of the input record after which it was written
}

func (o output) String() string {
	return fmt.Sprintf("%s %s=%s @%d", o.topic, str(o.key), str(o.value), o.ts)
}

func (in input) String() string {
	return fmt.Sprintf("%s %s=%s @%d", in.topic, str(in.key), str(in.value), in.ts)
}

func str(s *string) string {
	if s == nil {
		return "null"
	}
	return strconv.Quote(*s)
}

const null = `\N`

func field(s *string) string {
	if s == nil {
		return null
	}
	return *s
}

func unfield(s string) *string {
	if s == null {
		return nil
	}
	return &s
}

// writeCases writes cases in the Java side's input format (see KsDiff.java).
func writeCases(w io.Writer, cases []*testCase) error {
	bw := bufio.NewWriter(w)
	for _, c := range cases {
		ps := make([]string, len(c.params))
		for i, p := range c.params {
			ps[i] = p.name + "=" + strconv.FormatInt(p.value, 10)
		}
		fmt.Fprintf(bw, "case\t%d\t%s\t%s\n", c.id, c.topology, strings.Join(ps, ","))
		for _, in := range c.inputs {
			fmt.Fprintf(bw, "in\t%s\t%s\t%s\t%d\n", in.topic, field(in.key), field(in.value), in.ts)
		}
		bw.WriteString("end\n")
	}
	return bw.Flush()
}

// javaResult is what the Java side printed for one case.
type javaResult struct {
	outputs []output
	err     string // the case failed on the Java side
}

// readResults parses the Java side's output: per case, "case ID", "out
// TOPIC KEY VALUE TS INPUT" lines or an "error MESSAGE" line, then "end".
func readResults(r io.Reader) (map[int]*javaResult, error) {
	res := map[int]*javaResult{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	var cur *javaResult
	line := 0
	for sc.Scan() {
		line++
		f := strings.Split(sc.Text(), "\t")
		bad := func(why string) error {
			return fmt.Errorf("line %d of the Java output (%q): %s", line, sc.Text(), why)
		}
		switch f[0] {
		case "case":
			if len(f) != 2 || cur != nil {
				return nil, bad("a case line inside a case, or not 2 fields")
			}
			id, err := strconv.Atoi(f[1])
			if err != nil {
				return nil, bad(err.Error())
			}
			if res[id] != nil {
				return nil, bad("case printed twice")
			}
			cur = &javaResult{}
			res[id] = cur
		case "out":
			if len(f) != 6 || cur == nil {
				return nil, bad("an out line outside a case, or not 6 fields")
			}
			ts, err := strconv.ParseInt(f[4], 10, 64)
			if err != nil {
				return nil, bad(err.Error())
			}
			in, err := strconv.Atoi(f[5])
			if err != nil || in < 0 {
				return nil, bad("bad input index")
			}
			cur.outputs = append(cur.outputs, output{topic: f[1], key: unfield(f[2]), value: unfield(f[3]), ts: ts, in: in})
		case "error":
			if cur == nil {
				return nil, bad("an error line outside a case")
			}
			cur.err = strings.Join(f[1:], " ")
		case "end":
			if cur == nil {
				return nil, bad("an end line outside a case")
			}
			cur = nil
		default:
			return nil, bad("unknown line kind")
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the Java output: %w", err)
	}
	if cur != nil {
		return nil, fmt.Errorf("the Java output ends inside a case (line %d)", line)
	}
	return res, nil
}

// generator makes the inputs of a case: random keys, timestamps that move
// forward with out-of-order and late records among them, and tombstones.
type generator struct {
	r       *rand.Rand
	keys    int
	now     int64 // the latest timestamp so far
	nullKey float64
	tomb    float64
}

func newGenerator(seed uint64, id int) *generator {
	r := rand.New(rand.NewPCG(seed, uint64(id)))
	return &generator{
		r:    r,
		keys: []int{1, 3, 8}[r.IntN(3)],
		now:  1_000_000 + r.Int64N(1000),
		tomb: []float64{0, 0.1, 0.3}[r.IntN(3)],
	}
}

func (g *generator) key() *string {
	if g.nullKey > 0 && g.r.Float64() < g.nullKey {
		return nil
	}
	k := fmt.Sprintf("k%02d", g.r.IntN(g.keys))
	return &k
}

func (g *generator) value() *string {
	if g.r.Float64() < g.tomb {
		return nil
	}
	v := fmt.Sprintf("v%d", g.r.IntN(100))
	return &v
}

// timestamp returns the next record's timestamp: mostly a step forward,
// sometimes earlier (out of order), now and then far behind (late).
func (g *generator) timestamp() int64 {
	switch x := g.r.Float64(); {
	case x < 0.05:
		return g.now - 500 - g.r.Int64N(1000)
	case x < 0.3:
		return g.now - g.r.Int64N(200)
	default:
		g.now += g.r.Int64N(40)
		return g.now
	}
}

// windowedCase generates a windowed count or aggregation.
func windowedCase(g *generator, id int, topology string, records int) *testCase {
	size := []int64{100, 200, 500}[g.r.IntN(3)]
	advance := size
	if g.r.IntN(2) == 0 {
		advance = size / []int64{2, 4, 5}[g.r.IntN(3)]
	}
	grace := []int64{0, 50, 300}[g.r.IntN(3)]
	c := &testCase{id: id, topology: topology, params: []param{{"size", size}, {"advance", advance}, {"grace", grace}}}
	for range records {
		c.inputs = append(c.inputs, input{topic: "in", key: g.key(), value: g.value(), ts: g.timestamp()})
	}
	return c
}

// tableCase generates updates of tables and records of streams, on the
// topics topics, over few keys and few distinct values (so that updates
// repeat values and tables hold a key when the other side needs it).
func tableCase(topics ...string) func(g *generator, id int, topology string, records int) *testCase {
	return func(g *generator, id int, topology string, records int) *testCase {
		g.keys = []int{1, 2, 4}[g.r.IntN(3)]
		c := &testCase{id: id, topology: topology}
		for range records {
			in := input{topic: topics[g.r.IntN(len(topics))], key: g.key(), ts: g.timestamp()}
			if g.r.Float64() >= g.tomb {
				v := fmt.Sprintf("v%d", g.r.IntN(5))
				in.value = &v
			}
			c.inputs = append(c.inputs, in)
		}
		return c
	}
}

// streamJoinCase generates the records of two streams joined within a
// time difference and a grace period.
//
// No tombstones: Kafka Streams skips records with a null value but lets
// them advance stream time and the window stores' time (expiring records),
// which kstreams, having no null values, cannot mirror (docs/joins.md).
//
// Records are out of order by less than the time difference and the grace
// period. Beyond the difference Kafka Streams forwards a record with no
// match at once, without waiting for the grace period, and a record of the
// other side arriving within the grace period then joins it too (a
// spurious unmatched result); beyond the grace period kstreams' left and
// outer joins no longer join a record whose window closed (see
// docs/joins.md and join's TestStreamStreamNoSpuriousResult).
func streamJoinCase(g *generator, id int, topology string, records int) *testCase {
	g.tomb = 0
	diff, grace := []int64{20, 50, 200}[g.r.IntN(3)], []int64{0, 30, 300}[g.r.IntN(3)]
	c := &testCase{id: id, topology: topology, params: []param{{"diff", diff}, {"grace", grace}}}
	g.keys = []int{1, 2, 4}[g.r.IntN(3)]
	jitter := min(diff, grace)
	for range records {
		ts := g.now
		if jitter > 0 && g.r.Float64() < 0.3 {
			ts -= g.r.Int64N(jitter) // out of order, within the difference and the grace period
		} else {
			g.now += g.r.Int64N(40)
			ts = g.now
		}
		v := fmt.Sprintf("v%d", g.r.IntN(5))
		c.inputs = append(c.inputs, input{topic: []string{"left", "right"}[g.r.IntN(2)], key: g.key(), value: &v, ts: ts})
	}
	return c
}

// topologies lists what the harness runs, each with its case generator.
var topologies = []struct {
	name string
	gen  func(g *generator, id int, topology string, records int) *testCase
}{
	{"count", windowedCase},
	{"count-final", windowedCase},
	{"count-onclose", windowedCase},
	{"agg", windowedCase},
	{"agg-final", windowedCase},
	{"agg-onclose", windowedCase},
	{"table", tableCase("in")},
	{"stream-count", tableCase("in")},
	{"stream-agg", tableCase("in")},
	{"stream-reduce", tableCase("in")},
	{"table-count", tableCase("in")},
	{"table-agg", tableCase("in")},
	{"table-reduce", tableCase("in")},
	{"stream-table", tableCase("stream", "table")},
	{"stream-table-left", tableCase("stream", "table")},
	{"stream-global", tableCase("stream", "global")},
	{"stream-global-left", tableCase("stream", "global")},
	{"table-table", tableCase("left", "right")},
	{"table-table-left", tableCase("left", "right")},
	{"table-table-outer", tableCase("left", "right")},
	{"fk", tableCase("left", "right")},
	{"fk-left", tableCase("left", "right")},
	{"stream-stream", streamJoinCase},
	{"stream-stream-left", streamJoinCase},
	{"stream-stream-outer", streamJoinCase},
}

// generate returns n cases, cycling through the topologies (or only those
// named in only), each with up to records input records.
func generate(seed uint64, n, records int, only []string) []*testCase {
	var cases []*testCase
	for id := 0; len(cases) < n; id++ {
		t := topologies[id%len(topologies)]
		if len(only) > 0 && !slices.Contains(only, t.name) {
			if id > n*len(topologies)*10 {
				break
			}
			continue
		}
		g := newGenerator(seed, id)
		cases = append(cases, t.gen(g, id, t.name, records/2+g.r.IntN(records/2+1)))
	}
	return cases
}
