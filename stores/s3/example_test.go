package s3_test

import (
	"context"
	"log"
	"os"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/kstreams-go/kstreams/core/bucket"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/snapshot"
	"github.com/kstreams-go/kstreams/stores/pebble"
	"github.com/kstreams-go/kstreams/stores/s3"
)

// A store whose state lives in an S3 bucket, with Pebble as the local
// working copy. Credentials come from the environment (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY), then from the instance's role; nothing is logged.
// (Not run: it needs a bucket.)
func Example() {
	client, err := minio.New("s3.amazonaws.com", &minio.Options{
		Creds:  credentials.NewChainCredentials([]credentials.Provider{&credentials.EnvAWS{}, &credentials.IAM{}}),
		Secure: true,
		Region: os.Getenv("AWS_REGION"),
	})
	if err != nil {
		log.Fatal(err)
	}
	b := s3.New(client, "my-bucket", s3.WithPrefix("kstreams/"))
	// Fencing relies on conditional writes: refuse a service that ignores
	// them (the snapshot Supplier also checks this before its first open).
	if err := bucket.CheckConditional(context.Background(), b, "kstreams/"); err != nil {
		log.Fatal(err)
	}
	counts := store.KeyValue("counts", serde.String, serde.Int64,
		snapshot.Supplier(b, pebble.SnapshotLocal()))
	_ = counts // kstreams.AddStore(builder, counts)
}
