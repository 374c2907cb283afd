// Package s3 is the Amazon S3 driver of kstreams' object-storage contract
// (core/bucket): it keeps a bucket.Bucket in an S3 bucket, or in any
// S3-compatible service that honours conditional writes (If-None-Match: *
// and If-Match on PutObject and CompleteMultipartUpload), through
// github.com/minio/minio-go/v7.
//
//	client, err := minio.New("s3.amazonaws.com", &minio.Options{
//		Creds:  credentials.NewEnvAWS(), // or an IAM role, a shared file, ...
//		Secure: true,
//	})
//	b := s3.New(client, "my-bucket", s3.WithPrefix("kstreams/"))
//
// The snapshot engine (core/store/snapshot) keeps state stores' snapshots
// in such a bucket. The driver maps the contract one to one:
//
//   - Put is PutObject (a multipart upload above the part size, 16 MiB by
//     default); IfAbsent sends If-None-Match: *, IfMatch(v) sends
//     If-Match: "v". A 412, a 409 ConditionalRequestConflict, and a 404 on
//     a conditional write are bucket.ErrPreconditionFailed.
//   - Versions are ETags. The ETag of a single-part object is the MD5 of its
//     contents, so rewriting identical bytes keeps the version.
//   - List is ListObjectsV2, in ascending UTF-8 byte order.
//   - Delete of a missing object succeeds (S3 does not tell).
//
// Tests run the bucket/buckettest conformance suite against versitygw
// (tools/services/versitygw.sh installs it), including concurrent
// create-if-absent and compare-and-swap races.
package s3
