package bigtable_test

import (
	"context"
	"fmt"
	"log"

	"cloud.google.com/go/bigtable"
	"cloud.google.com/go/bigtable/bttest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	bigtablestore "github.com/kstreams-go/kstreams/stores/bigtable"
)

// A Supplier is what a topology's store declaration takes:
//
//	store.KeyValue("counts", serde.String, serde.Int64, bigtablestore.Supplier(client, "kstreams"))
//
// The runtime calls it for each task. Here it is called by hand against the
// in-process emulator, and the typed store used directly. Against a real
// Bigtable, create the client with bigtable.NewClient(ctx, project,
// instance) and its own credentials options.
func Example() {
	ctx := context.Background()
	srv, err := bttest.NewServer("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	admin, err := bigtable.NewAdminClient(ctx, "project", "instance", option.WithGRPCConn(conn))
	if err != nil {
		log.Fatal(err)
	}
	defer admin.Close()
	if err := bigtablestore.CreateTable(ctx, admin, "kstreams"); err != nil {
		log.Fatal(err)
	}
	client, err := bigtable.NewClientWithConfig(ctx, "project", "instance",
		bigtable.ClientConfig{MetricsProvider: bigtable.NoopMetricsProvider{}}, option.WithGRPCConn(conn))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	supply := bigtablestore.Supplier(client, "kstreams")
	backend, err := supply(store.BackendContext{App: "wordcount", Store: "counts", Task: "0_0", Partition: 0})
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
	// The runtime calls FlushAt before each commit: one ApplyBulk for
	// every write since the last one, with the changelog offset.
	if err := backend.(store.OffsetKeeper).FlushAt(6); err != nil {
		log.Fatal(err)
	}
	if err := backend.Close(); err != nil {
		log.Fatal(err)
	}

	// The next owner (another process, after a rebalance) reads them.
	backend, err = supply(store.BackendContext{App: "wordcount", Store: "counts", Task: "0_0", Partition: 0})
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	counts = store.NewKeyValueStore("counts", "counts", backend, serde.String, serde.Int64)
	for kv, err := range counts.All() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(kv.Key, kv.Value)
	}
	state, err := bigtablestore.ReadInstanceState(ctx, client, "kstreams", bigtablestore.DefaultFamily, "wordcount", "counts", 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("owner epoch %d, changelog offset %d\n", state.Epoch, state.Offset)
	// Output:
	// be 2
	// not 1
	// or 1
	// to 2
	// owner epoch 2, changelog offset 6
}
