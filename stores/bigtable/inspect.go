package bigtable

import (
	"context"
	"encoding/binary"
	"fmt"

	"cloud.google.com/go/bigtable"

	"github.com/kstreams-go/kstreams/core/store"
)

// InstanceRows returns the row range holding every row of one store
// instance, its meta row included: to read them, or to drop them with
// AdminClient.DropRowRange once the application is retired.
func InstanceRows(app, storeName string, partition int32) bigtable.RowRange {
	return bigtable.PrefixRange(string(instancePrefix(app, storeName, partition)))
}

// InstanceState is what a store instance's meta row holds.
type InstanceState struct {
	// Epoch is the owner epoch: raised by each open, checked by each
	// flush. 0 if the instance was never opened.
	Epoch int64
	// Offset is the changelog offset stored by the last FlushAt; HasOffset
	// is false if none is stored.
	Offset    int64
	HasOffset bool
	// Inputs are the input offsets stored by the last FlushInputs (nil if
	// none).
	Inputs store.InputOffsets
	// Committed is the version of the last committed flush (the owner's
	// epoch in the high bits).
	Committed uint64
	// Pending is true while a flush is marked and not committed: a flush
	// in progress, or one an owner left when it crashed or was fenced.
	Pending bool
	// Excluded counts the ranges of versions that owners wrote and never
	// committed: their cells are never read.
	Excluded int
}

// ReadInstanceState reads the meta row of a store instance, for monitoring
// and tooling; it changes nothing. family is DefaultFamily unless the
// Supplier was given WithColumnFamily.
func ReadInstanceState(ctx context.Context, client *bigtable.Client, table, family, app, storeName string, partition int32) (InstanceState, error) {
	var s InstanceState
	key := metaRowKey(instancePrefix(app, storeName, partition))
	row, err := client.Open(table).ReadRow(ctx, key, bigtable.RowFilter(bigtable.LatestNFilter(1)))
	if err != nil {
		return s, fmt.Errorf("bigtable store %s/%s/%d: reading the meta row: %w", app, storeName, partition, err)
	}
	for _, it := range row[family] {
		v := it.Value
		switch it.Column[len(family)+1:] {
		case colEpoch:
			if len(v) == 8 {
				s.Epoch = int64(binary.BigEndian.Uint64(v))
			}
		case colOffset:
			if len(v) == 8 {
				s.Offset, s.HasOffset = int64(binary.BigEndian.Uint64(v)), true
			}
		case colCommitted:
			if len(v) == 8 {
				s.Committed = binary.BigEndian.Uint64(v)
			}
		case colInputs:
			in, err := store.ParseInputOffsets(v)
			if err != nil {
				return s, fmt.Errorf("bigtable store %s/%s/%d: meta row column %s: %w", app, storeName, partition, colInputs, err)
			}
			s.Inputs = in
		case colPending:
			s.Pending = len(v) == 8
		case colExcluded:
			s.Excluded = len(v) / 16
		}
	}
	return s, nil
}
