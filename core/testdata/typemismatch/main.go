// This program must not compile: a processor reading Record[string, int64]
// is wired to a parent producing Record[string, string].
package main

import (
	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
)

func main() {
	b := kstreams.NewBuilder()
	src := kstreams.Source(b, "src", []string{"in"}, serde.String, serde.String)
	kstreams.Sink(src, "out", "out", serde.String, serde.Int64)
}
