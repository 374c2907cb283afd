package pebble

import (
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/storetest"
)

// openTemp opens a store in a test directory with opts.
func openTemp(t *testing.T, opts ...Option) *Backend {
	t.Helper()
	b, err := Open(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend { return openTemp(t) })
}

func TestConformanceWithoutWAL(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend { return openTemp(t, WithoutWAL()) })
}

// With a TTL long enough that nothing expires, a store behaves like any
// other.
func TestConformanceTTL(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend { return openTemp(t, WithTTL(time.Hour)) })
}

func TestConformanceSupplier(t *testing.T) {
	supply := Supplier()
	storetest.Run(t, func(t *testing.T) store.Backend {
		b, err := supply(store.BackendContext{Store: "conformance", Task: "0_0", Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}
