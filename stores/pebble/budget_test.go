package pebble

import (
	"testing"

	"github.com/kstreams-go/kstreams/core/store"
)

// The memory budget's hint sizes the block cache and the memtables unless
// they were given; no hint keeps the defaults.
func TestBudgetSizes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      []Option
		budget    int64
		instances int
		cache     int64
		memTable  uint64
	}{
		{"no hint", nil, 0, 0, DefaultCacheSize, DefaultMemTableSize},
		// The default budget's share (32 MiB) over 8 stores: a 16 MiB cache,
		// 16 MiB of memtables, two per store of 1 MiB.
		{"8 stores", nil, 32 << 20, 8, 16 << 20, 1 << 20},
		{"2 stores", nil, 32 << 20, 2, 16 << 20, 4 << 20},
		// Never above the defaults, never below 1 MiB per memtable.
		{"large budget", nil, 1 << 30, 2, DefaultCacheSize, DefaultMemTableSize},
		{"1000 stores", nil, 32 << 20, 1000, 16 << 20, minBudgetMemTable},
		{"given", []Option{WithCacheSize(100 << 20), WithMemTableSize(2 << 20)}, 32 << 20, 8, 100 << 20, 2 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newConfig(tc.opts)
			cache, memTable := c.budgetSizes(tc.budget, tc.instances)
			if cache != tc.cache || memTable != tc.memTable {
				t.Errorf("cache %d, memtable %d; want %d and %d", cache, memTable, tc.cache, tc.memTable)
			}
		})
	}
}

// A Supplier opens its stores with the budget's sizes.
func TestSupplierUsesBudget(t *testing.T) {
	sup := Supplier()
	b, err := sup(store.BackendContext{Store: "s", Task: "0_0", Dir: t.TempDir(), MemoryBudget: 32 << 20, StoreInstances: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	pb := b.(*Backend)
	if got := pb.res.cache.MaxSize(); got != 16<<20 {
		t.Errorf("block cache of %d bytes, want 16 MiB", got)
	}
}
