package gcs_test

import (
	"context"
	"log"

	"cloud.google.com/go/storage"

	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/snapshot"
	"github.com/kstreams-go/kstreams/stores/gcs"
	"github.com/kstreams-go/kstreams/stores/pebble"
)

// A store whose state lives in a GCS bucket, with Pebble as the local
// working copy. Credentials are Application Default Credentials (a service
// account key named by GOOGLE_APPLICATION_CREDENTIALS, or the workload's
// identity); nothing is logged. (Not run: it needs a bucket.)
func Example() {
	client, err := storage.NewClient(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	b := gcs.New(client, "my-bucket", gcs.WithPrefix("kstreams/"))
	counts := store.KeyValue("counts", serde.String, serde.Int64,
		snapshot.Supplier(b, pebble.SnapshotLocal()))
	_ = counts // kstreams.AddStore(builder, counts)
}
