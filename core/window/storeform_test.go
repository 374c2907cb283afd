package window_test

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/window"
)

// TestStoresKeepOrderPreservingNumbers: a windowed count keyed by int64
// writes Kafka's two's complement on its output topic, and the
// order-preserving form in its stores, as before topics changed to Kafka's
// format: stores written by earlier versions read the same.
func TestStoresKeepOrderPreservingNumbers(t *testing.T) {
	backends := map[string]store.Backend{}
	supplier := func(bc store.BackendContext) (store.Backend, error) {
		b, err := memory.Supplier()(bc)
		backends[bc.Store] = b
		return b, err
	}
	b := kstreams.NewBuilder()
	events := kstreams.Source(b, "events", []string{"events"}, serde.Int64, serde.String)
	st := window.NewStore("counts", window.Tumbling(time.Hour), serde.Int64, serde.Int64, supplier)
	counts := window.Count(events, "count", st, window.EmitFinal())
	kstreams.Sink(counts, "out", "counts", window.KeySerde(serde.Int64), serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := kstreamstest.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := kstreamstest.Input(d, "events", serde.Int64, serde.String)
	base := time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)
	for _, at := range []time.Duration{time.Minute, 2 * time.Minute} {
		if err := in.PipeAt(-3, "x", base.Add(at)); err != nil {
			t.Fatal(err)
		}
	}

	// The window store's value: the stamp, then the count 2, both
	// order-preserving; its key holds the key -3 order-preserving.
	orderedMinus3, _ := hex.DecodeString("7ffffffffffffffd")
	orderedTwo, _ := hex.DecodeString("8000000000000002")
	var found bool
	for e, err := range backends["counts"].Range(nil, nil) {
		if err != nil {
			t.Fatal(err)
		}
		found = true
		if !bytes.Contains(e.Key, orderedMinus3) || !bytes.HasSuffix(e.Value, orderedTwo) {
			t.Errorf("window store entry %x = %x; want the key -3 as %x and the count 2 as %x", e.Key, e.Value, orderedMinus3, orderedTwo)
		}
	}
	if !found {
		t.Fatal("the window store is empty")
	}
	// The pending-emission index: close | start | end | key -3, all
	// order-preserving.
	found = false
	for e, err := range backends[window.PendingStoreName("counts")].Range(nil, nil) {
		if err != nil {
			t.Fatal(err)
		}
		found = true
		if !bytes.HasSuffix(e.Key, orderedMinus3) {
			t.Errorf("pending entry %x does not end with the key -3 as %x", e.Key, orderedMinus3)
		}
	}
	if !found {
		t.Fatal("the pending-emission store is empty")
	}

	// Closing the window emits the count on the topic, in Kafka's format.
	if err := in.PipeAt(5, "y", base.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	raws := kstreamstest.Output(d, "counts", window.KeySerde(serde.Int64), serde.Int64).ReadRaw()
	if len(raws) != 1 {
		t.Fatalf("%d outputs, want 1", len(raws))
	}
	if got, want := hex.EncodeToString(raws[0].Value), "0000000000000002"; got != want {
		t.Errorf("output value %s, want %s (Kafka's LongSerializer)", got, want)
	}
	if got := hex.EncodeToString(raws[0].Key); !strings.HasPrefix(got, "fffffffffffffffd") {
		t.Errorf("output key %s does not start with -3 in two's complement", got)
	}
}
