package pebble

import (
	"errors"

	pebbledb "github.com/cockroachdb/pebble/v2"
)

// formatKey holds the store's format: how values are encoded. It is written
// when the store is created and checked on every open, so that a store
// written with a TTL (values prefixed with their write time) is never read
// as one without, or the reverse.
var formatKey = []byte{nsMeta, 'f', 'o', 'r', 'm', 'a', 't'}

const (
	formatPlain = "kstreams-pebble/1 values=plain"
	formatTTL   = "kstreams-pebble/1 values=ttl"
)

func (b *Backend) checkFormat() error {
	want := formatPlain
	if b.ttl > 0 {
		want = formatTTL
	}
	v, closer, err := b.db.Get(formatKey)
	switch {
	case err == nil:
		got := string(v)
		closer.Close()
		if got == want {
			return nil
		}
		switch {
		case got == formatTTL:
			return b.errorf("the store was created with a TTL (WithTTL); open it with one, or delete the directory to restore it from its changelog")
		case got == formatPlain:
			return b.errorf("the store was created without a TTL; open it without WithTTL, or delete the directory to restore it from its changelog")
		default:
			return b.errorf("unknown store format %q (written by a newer version?)", got)
		}
	case !errors.Is(err, pebbledb.ErrNotFound):
		return b.errorf("reading the store format: %w", err)
	}
	// A new store, unless it holds data without a format record: then it
	// is not a kstreams store.
	lower, upper := bounds(nil, nil)
	it, err := b.db.NewIter(&pebbledb.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return b.errorf("checking the store is empty: %w", err)
	}
	nonEmpty := it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return b.errorf("checking the store is empty: %w", err)
	}
	if nonEmpty {
		return b.errorf("the directory holds a Pebble database that is not a kstreams store (no format record)")
	}
	if err := b.db.Set(formatKey, []byte(want), pebbledb.NoSync); err != nil {
		return b.errorf("writing the store format: %w", err)
	}
	// Make the record durable now: without a write-ahead log it would
	// otherwise wait for the first Flush.
	if err := b.db.Flush(); err != nil {
		return b.errorf("writing the store format: %w", err)
	}
	return nil
}
