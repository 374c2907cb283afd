package table

import "github.com/kstreams-go/kstreams/core/serde"

// ChangeSerdeForTest exposes the repartition encoding of changes to the
// package's external tests.
func ChangeSerdeForTest[V any](values serde.Serde[V]) serde.Serde[Change[V]] {
	return changeSerde[V]{values}
}
