package pebble_test

import (
	"fmt"
	"log"
	"os"

	"github.com/kstreams-go/kstreams/core/bucket"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/snapshot"
	"github.com/kstreams-go/kstreams/stores/pebble"
)

// Pebble stores whose state lives in a bucket: a local directory here,
// stores/s3 or stores/gcs in production. The runtime calls FlushAt before
// each commit; here it is called by hand, and the store reopened on a new
// disk as another instance taking the task over would.
func ExampleSnapshotLocal() {
	tmp, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	b, err := bucket.Dir(tmp + "/bucket")
	if err != nil {
		log.Fatal(err)
	}
	supply := snapshot.Supplier(b, pebble.SnapshotLocal())
	// In a topology:
	//	store.KeyValue("counts", serde.String, serde.Int64, supply)

	bc := store.BackendContext{App: "wordcount", Store: "counts", Task: "0_0", Dir: tmp + "/instance-1"}
	backend, err := supply(bc)
	if err != nil {
		log.Fatal(err)
	}
	counts := store.NewKeyValueStore("counts", "counts", backend, serde.String, serde.Int64)
	for _, word := range []string{"to", "be", "or", "not", "to", "be"} {
		n, _, err := counts.Get(word)
		if err != nil {
			log.Fatal(err)
		}
		if err := counts.Put(word, n+1); err != nil {
			log.Fatal(err)
		}
	}
	// A snapshot covering the changelog up to offset 6.
	if err := backend.(store.OffsetKeeper).FlushAt(6); err != nil {
		log.Fatal(err)
	}
	backend.Close()

	bc.Dir = tmp + "/instance-2" // another machine: everything comes from the bucket
	moved, err := supply(bc)
	if err != nil {
		log.Fatal(err)
	}
	defer moved.Close()
	offset, _, _ := moved.(store.OffsetKeeper).StoredOffset()
	fmt.Println("changelog offset", offset)
	for kv, err := range store.NewKeyValueStore("counts", "counts", moved, serde.String, serde.Int64).All() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(kv.Key, kv.Value)
	}
	// Output:
	// changelog offset 6
	// be 2
	// not 1
	// or 1
	// to 2
}
