package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/kstreams-go/kstreams/core/bucket"
)

// Bucket is a bucket.Bucket kept in one S3 bucket, optionally under a name
// prefix. It is safe for concurrent use.
type Bucket struct {
	client   *minio.Client
	name     string // the S3 bucket
	prefix   string
	partSize uint64
}

var _ bucket.Bucket = (*Bucket)(nil)

// Option configures New.
type Option func(*Bucket)

// WithPrefix keeps every object under prefix in the S3 bucket (for
// example "team-a/kstreams/"), so that several applications or
// environments can share one bucket. Names the Bucket reports leave the
// prefix out.
func WithPrefix(prefix string) Option {
	return func(b *Bucket) { b.prefix = prefix }
}

// WithPartSize sets the part size of multipart uploads (default, and
// minimum, 16 MiB; objects up to one part are sent in a single PUT).
func WithPartSize(bytes uint64) Option {
	return func(b *Bucket) { b.partSize = max(bytes, 16<<20) }
}

// New returns the S3 bucket bucketName reached through client as a
// bucket.Bucket. The bucket must exist. Credentials, endpoint and TLS are
// the client's (see minio.New and its credentials providers: environment,
// shared files, instance roles); New logs nothing.
//
// Conditional writes need a service that honours If-None-Match and
// If-Match on PutObject and CompleteMultipartUpload (AWS S3 since 2024,
// versitygw, MinIO); call bucket.CheckConditional to detect one that
// silently ignores them.
func New(client *minio.Client, bucketName string, opts ...Option) *Bucket {
	b := &Bucket{client: client, name: bucketName}
	for _, o := range opts {
		o(b)
	}
	return b
}

func (b *Bucket) errorf(op, name string, err error) error {
	return fmt.Errorf("s3 bucket %s: %s %q: %w", b.name, op, b.prefix+name, err)
}

// translate maps S3's errors to the bucket package's.
func translate(err error) error {
	if err == nil {
		return nil
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == minio.NoSuchKey || resp.StatusCode == http.StatusNotFound && resp.Code != minio.NoSuchBucket:
		return fmt.Errorf("%w (%v)", bucket.ErrNotFound, err)
	case resp.Code == minio.PreconditionFailed || resp.StatusCode == http.StatusPreconditionFailed:
		return fmt.Errorf("%w (%v)", bucket.ErrPreconditionFailed, err)
	case resp.StatusCode == http.StatusConflict && resp.Code == "ConditionalRequestConflict":
		// AWS: another conditional write of the object was in progress;
		// this one did not apply.
		return fmt.Errorf("%w (%v)", bucket.ErrPreconditionFailed, err)
	}
	return err
}

// version strips the quotes some services leave around an ETag.
func version(etag string) string { return strings.Trim(etag, `"`) }

// Put implements bucket.Bucket. Objects larger than the part size are sent
// as a multipart upload whose conditions apply at completion.
func (b *Bucket) Put(ctx context.Context, name string, r io.Reader, size int64, cond bucket.Cond) (string, error) {
	if err := bucket.CheckName(name); err != nil {
		return "", b.errorf("put", name, err)
	}
	if size < 0 {
		return "", b.errorf("put", name, fmt.Errorf("negative size %d", size))
	}
	opts := minio.PutObjectOptions{PartSize: b.partSize, ContentType: "application/octet-stream"}
	switch v, ok := cond.MatchVersion(); {
	case cond.IsAbsent():
		opts.SetMatchETagExcept("*")
	case ok:
		opts.SetMatchETag(v)
	}
	info, err := b.client.PutObject(ctx, b.name, b.prefix+name, io.LimitReader(r, size), size, opts)
	if err != nil {
		err = translate(err)
		if !cond.IsZero() && errors.Is(err, bucket.ErrNotFound) {
			// S3 answers If-Match on a missing object with 404 NoSuchKey.
			err = fmt.Errorf("%w (%v)", bucket.ErrPreconditionFailed, err)
		}
		return "", b.errorf("put", name, fmt.Errorf("%s: %w", cond, err))
	}
	if info.Size != size {
		return "", b.errorf("put", name, fmt.Errorf("%d bytes written, %d expected", info.Size, size))
	}
	return version(info.ETag), nil
}

func (b *Bucket) info(oi minio.ObjectInfo) bucket.Info {
	return bucket.Info{
		Name:     strings.TrimPrefix(oi.Key, b.prefix),
		Size:     oi.Size,
		Version:  version(oi.ETag),
		Modified: oi.LastModified,
	}
}

// Get implements bucket.Bucket.
func (b *Bucket) Get(ctx context.Context, name string) (io.ReadCloser, bucket.Info, error) {
	if err := bucket.CheckName(name); err != nil {
		return nil, bucket.Info{}, b.errorf("get", name, err)
	}
	obj, err := b.client.GetObject(ctx, b.name, b.prefix+name, minio.GetObjectOptions{})
	if err != nil {
		return nil, bucket.Info{}, b.errorf("get", name, translate(err))
	}
	oi, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, bucket.Info{}, b.errorf("get", name, translate(err))
	}
	return &object{obj: obj, b: b, name: name}, b.info(oi), nil
}

// object adds the bucket's context to the errors of a download.
type object struct {
	obj  *minio.Object
	b    *Bucket
	name string
}

func (o *object) Read(p []byte) (int, error) {
	n, err := o.obj.Read(p)
	if err != nil && err != io.EOF {
		err = o.b.errorf("get", o.name, translate(err))
	}
	return n, err
}

func (o *object) Close() error { return o.obj.Close() }

// Stat implements bucket.Bucket.
func (b *Bucket) Stat(ctx context.Context, name string) (bucket.Info, error) {
	if err := bucket.CheckName(name); err != nil {
		return bucket.Info{}, b.errorf("stat", name, err)
	}
	oi, err := b.client.StatObject(ctx, b.name, b.prefix+name, minio.StatObjectOptions{})
	if err != nil {
		return bucket.Info{}, b.errorf("stat", name, translate(err))
	}
	return b.info(oi), nil
}

// List implements bucket.Bucket with ListObjectsV2, which returns names in
// ascending order of their UTF-8 bytes.
func (b *Bucket) List(ctx context.Context, prefix string) iter.Seq2[bucket.Info, error] {
	return func(yield func(bucket.Info, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // stops the listing goroutine when the caller stops early
		for oi := range b.client.ListObjects(ctx, b.name, minio.ListObjectsOptions{Prefix: b.prefix + prefix, Recursive: true}) {
			if oi.Err != nil {
				yield(bucket.Info{}, b.errorf("list", prefix, translate(oi.Err)))
				return
			}
			if !yield(b.info(oi), nil) {
				return
			}
		}
		if err := ctx.Err(); err != nil {
			yield(bucket.Info{}, b.errorf("list", prefix, err))
		}
	}
}

// Delete implements bucket.Bucket.
func (b *Bucket) Delete(ctx context.Context, name string) error {
	if err := bucket.CheckName(name); err != nil {
		return b.errorf("delete", name, err)
	}
	err := translate(b.client.RemoveObject(ctx, b.name, b.prefix+name, minio.RemoveObjectOptions{}))
	if err != nil && !errors.Is(err, bucket.ErrNotFound) {
		return b.errorf("delete", name, err)
	}
	return nil
}
