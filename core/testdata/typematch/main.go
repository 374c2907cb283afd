// The control for typemismatch: the same program with matching types compiles.
package main

import (
	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
)

func main() {
	b := kstreams.NewBuilder()
	src := kstreams.Source(b, "src", []string{"in"}, serde.String, serde.String)
	kstreams.Sink(src, "out", "out", serde.String, serde.String)
}
