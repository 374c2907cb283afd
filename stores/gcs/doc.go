// Package gcs is the Google Cloud Storage driver of kstreams'
// object-storage contract (core/bucket), through cloud.google.com/go/storage.
//
//	client, err := storage.NewClient(ctx) // Application Default Credentials
//	b := gcs.New(client, "my-bucket", gcs.WithPrefix("kstreams/"))
//	counts := store.KeyValue("counts", serde.String, serde.Int64,
//		snapshot.Supplier(b, pebble.SnapshotLocal()))
//
// The driver maps the contract one to one:
//
//   - Put is an upload (resumable, one request up to 16 MiB); IfAbsent is
//     ifGenerationMatch=0, IfMatch(v) is ifGenerationMatch=v. A 412 is
//     bucket.ErrPreconditionFailed.
//   - Versions are generations (decimal): every write gets a new one, even
//     of identical bytes.
//   - List is objects.list with a prefix, in ascending UTF-8 byte order.
//   - Delete of a missing object succeeds.
//
// Tests run the bucket/buckettest conformance suite with the real client
// against fake-gcs-server (tools/services/fake-gcs-server.sh installs it).
package gcs
