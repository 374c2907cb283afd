package gcs_test

import (
	"testing"

	"github.com/kstreams-go/kstreams/core/bucket"
	"github.com/kstreams-go/kstreams/core/bucket/buckettest"
	"github.com/kstreams-go/kstreams/stores/gcs"
)

func TestConformance(t *testing.T) {
	srv := startServer(t)
	buckettest.Run(t, func(t *testing.T) bucket.Bucket { return srv.newBucket(t) })
}

// Under a prefix, names are reported without it and objects outside it
// are not listed.
func TestConformancePrefix(t *testing.T) {
	srv := startServer(t)
	buckettest.Run(t, func(t *testing.T) bucket.Bucket {
		return srv.newBucket(t, gcs.WithPrefix("apps/kstreams/"))
	})
}
