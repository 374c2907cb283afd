package kstreamstest_test

import (
	"fmt"
	"strings"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
)

// Test a topology without a broker: pipe records in, read records out.
func Example() {
	b := kstreams.NewBuilder()
	lines := kstreams.Source(b, "lines", []string{"text"}, serde.String, serde.String)
	shout := kstreams.MapValues(lines, "shout", func(v string) (string, error) { return strings.ToUpper(v) + "!", nil })
	kstreams.Sink(shout, "out", "shouted", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		panic(err)
	}

	d, err := kstreamstest.New(topo)
	if err != nil {
		panic(err)
	}
	defer d.Close()
	in := kstreamstest.Input(d, "text", serde.String, serde.String)
	out := kstreamstest.Output(d, "shouted", serde.String, serde.String)
	for _, line := range []string{"hello", "kafka"} {
		if err := in.Pipe("k", line); err != nil {
			panic(err)
		}
	}
	records, err := out.ReadAll()
	if err != nil {
		panic(err)
	}
	for _, r := range records {
		fmt.Println(r.Key, r.Value)
	}
	// Output:
	// k HELLO!
	// k KAFKA!
}
