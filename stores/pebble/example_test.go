package pebble_test

import (
	"fmt"
	"log"
	"os"

	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/stores/pebble"
)

// A Supplier is what a topology's store declaration takes:
//
//	store.KeyValue("counts", serde.String, serde.Int64, pebble.Supplier())
//
// The runtime calls it for each task with the task's state directory. Here
// it is called by hand, and the typed store used directly.
func Example() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	supply := pebble.Supplier(pebble.WithCacheSize(16 << 20))
	backend, err := supply(store.BackendContext{Store: "counts", Task: "0_0", Dir: dir})
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
	// The runtime flushes at each commit; Flush makes the writes durable.
	if err := backend.Flush(); err != nil {
		log.Fatal(err)
	}
	for kv, err := range counts.All() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(kv.Key, kv.Value)
	}
	if err := backend.Close(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// be 2
	// not 1
	// or 1
	// to 2
}

// Checkpoints are openable copies of a store, for backups and object-storage
// snapshots.
func ExampleBackend_Checkpoint() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := pebble.Open(dir + "/store")
	if err != nil {
		log.Fatal(err)
	}
	if err := s.Set([]byte("greeting"), []byte("hello")); err != nil {
		log.Fatal(err)
	}
	if err := s.Checkpoint(dir + "/checkpoint"); err != nil {
		log.Fatal(err)
	}
	s.Close()

	restored, err := pebble.OpenCheckpoint(dir+"/checkpoint", dir+"/restored")
	if err != nil {
		log.Fatal(err)
	}
	defer restored.Close()
	v, _, err := restored.Get([]byte("greeting"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(v))
	// Output: hello
}
