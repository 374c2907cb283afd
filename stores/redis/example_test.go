package redis_test

import (
	"fmt"
	"log"

	"github.com/alicebob/miniredis/v2"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	goredis "github.com/redis/go-redis/v9"

	"github.com/kstreams-go/kstreams/stores/redis"
)

// A Supplier is what a topology's store declaration takes:
//
//	client := goredis.NewClient(&goredis.Options{Addr: "redis:6379", TLSConfig: ..., Password: ...})
//	store.KeyValue("counts", serde.String, serde.Int64, redis.Supplier(client))
//
// The runtime calls it for each task. Here it is called by hand, and the
// typed store used directly. The server is miniredis, an in-process fake
// that keeps the example self-contained; the package's tests run against a
// real redis-server.
func Example() {
	server, err := miniredis.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	client := goredis.NewClient(&goredis.Options{Addr: server.Addr()})
	defer client.Close()

	backend, err := redis.Supplier(client)(store.BackendContext{App: "wordcount", Store: "counts", Task: "0_0", Partition: 0})
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
	// The runtime calls FlushAt before each commit: all buffered writes and
	// the changelog offset go to Redis in one script.
	if err := backend.(store.OffsetKeeper).FlushAt(6); err != nil {
		log.Fatal(err)
	}
	for kv, err := range counts.All() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(kv.Key, kv.Value)
	}
	fmt.Println(server.Keys())
	if err := backend.Close(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// be 2
	// not 1
	// or 1
	// to 2
	// [{ks:wordcount:counts:0}:data {ks:wordcount:counts:0}:index {ks:wordcount:counts:0}:meta]
}
