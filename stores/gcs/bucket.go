package gcs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strconv"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"

	"github.com/kstreams-go/kstreams/core/bucket"
)

// Bucket is a bucket.Bucket kept in one Google Cloud Storage bucket,
// optionally under a name prefix. It is safe for concurrent use.
type Bucket struct {
	h      *storage.BucketHandle
	name   string
	prefix string
}

var _ bucket.Bucket = (*Bucket)(nil)

// Option configures New.
type Option func(*Bucket)

// WithPrefix keeps every object under prefix in the GCS bucket (for
// example "team-a/kstreams/"). Names the Bucket reports leave the prefix
// out.
func WithPrefix(prefix string) Option {
	return func(b *Bucket) { b.prefix = prefix }
}

// New returns the GCS bucket bucketName reached through client as a
// bucket.Bucket. The bucket must exist. Credentials are the client's
// (Application Default Credentials unless told otherwise); New logs
// nothing.
func New(client *storage.Client, bucketName string, opts ...Option) *Bucket {
	b := &Bucket{h: client.Bucket(bucketName), name: bucketName}
	for _, o := range opts {
		o(b)
	}
	return b
}

func (b *Bucket) errorf(op, name string, err error) error {
	return fmt.Errorf("gcs bucket %s: %s %q: %w", b.name, op, b.prefix+name, err)
}

// translate maps GCS's errors to the bucket package's.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, storage.ErrObjectNotExist) {
		return fmt.Errorf("%w (%v)", bucket.ErrNotFound, err)
	}
	var gerr *googleapi.Error
	if errors.As(err, &gerr) {
		switch gerr.Code {
		case http.StatusPreconditionFailed:
			return fmt.Errorf("%w (%v)", bucket.ErrPreconditionFailed, err)
		case http.StatusNotFound:
			return fmt.Errorf("%w (%v)", bucket.ErrNotFound, err)
		}
	}
	return err
}

func version(generation int64) string { return strconv.FormatInt(generation, 10) }

// Put implements bucket.Bucket with a resumable upload (a single request up
// to the chunk size, 16 MiB). IfAbsent is ifGenerationMatch=0, IfMatch(v)
// is ifGenerationMatch=v. The client library retries conditional uploads;
// a retry of a write that did land fails its condition, which callers of
// conditional writes must expect (the snapshot engine re-reads).
func (b *Bucket) Put(ctx context.Context, name string, r io.Reader, size int64, cond bucket.Cond) (string, error) {
	if err := bucket.CheckName(name); err != nil {
		return "", b.errorf("put", name, err)
	}
	if size < 0 {
		return "", b.errorf("put", name, fmt.Errorf("negative size %d", size))
	}
	o := b.h.Object(b.prefix + name)
	switch v, ok := cond.MatchVersion(); {
	case cond.IsAbsent():
		o = o.If(storage.Conditions{DoesNotExist: true})
	case ok:
		gen, err := strconv.ParseInt(v, 10, 64)
		if err != nil || gen <= 0 {
			return "", b.errorf("put", name, fmt.Errorf("version %q is not a generation: %w", v, bucket.ErrPreconditionFailed))
		}
		o = o.If(storage.Conditions{GenerationMatch: gen})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // a canceled context aborts an unfinished upload
	w := o.NewWriter(ctx)
	w.ContentType = "application/octet-stream"
	n, err := io.Copy(w, io.LimitReader(r, size))
	if err == nil && n != size {
		err = fmt.Errorf("the reader held %d bytes, the size given is %d", n, size)
	}
	if err != nil {
		cancel()
		w.Close()
		return "", b.errorf("put", name, fmt.Errorf("%s: %w", cond, err))
	}
	if err := w.Close(); err != nil {
		err = translate(err)
		if !cond.IsZero() && errors.Is(err, bucket.ErrNotFound) {
			err = fmt.Errorf("%w (%v)", bucket.ErrPreconditionFailed, err)
		}
		return "", b.errorf("put", name, fmt.Errorf("%s: %w", cond, err))
	}
	return version(w.Attrs().Generation), nil
}

func (b *Bucket) info(a *storage.ObjectAttrs) bucket.Info {
	return bucket.Info{
		Name:     strings.TrimPrefix(a.Name, b.prefix),
		Size:     a.Size,
		Version:  version(a.Generation),
		Modified: a.Updated,
	}
}

// Get implements bucket.Bucket. The reader reads the generation Get found.
func (b *Bucket) Get(ctx context.Context, name string) (io.ReadCloser, bucket.Info, error) {
	if err := bucket.CheckName(name); err != nil {
		return nil, bucket.Info{}, b.errorf("get", name, err)
	}
	r, err := b.h.Object(b.prefix + name).NewReader(ctx)
	if err != nil {
		return nil, bucket.Info{}, b.errorf("get", name, translate(err))
	}
	info := bucket.Info{Name: name, Size: r.Attrs.Size, Version: version(r.Attrs.Generation), Modified: r.Attrs.LastModified}
	return &object{r: r, b: b, name: name}, info, nil
}

// object adds the bucket's context to the errors of a download.
type object struct {
	r    *storage.Reader
	b    *Bucket
	name string
}

func (o *object) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	if err != nil && err != io.EOF {
		err = o.b.errorf("get", o.name, translate(err))
	}
	return n, err
}

func (o *object) Close() error { return o.r.Close() }

// Stat implements bucket.Bucket.
func (b *Bucket) Stat(ctx context.Context, name string) (bucket.Info, error) {
	if err := bucket.CheckName(name); err != nil {
		return bucket.Info{}, b.errorf("stat", name, err)
	}
	a, err := b.h.Object(b.prefix + name).Attrs(ctx)
	if err != nil {
		return bucket.Info{}, b.errorf("stat", name, translate(err))
	}
	return b.info(a), nil
}

// List implements bucket.Bucket; GCS lists names in ascending order of
// their UTF-8 bytes.
func (b *Bucket) List(ctx context.Context, prefix string) iter.Seq2[bucket.Info, error] {
	return func(yield func(bucket.Info, error) bool) {
		q := &storage.Query{Prefix: b.prefix + prefix}
		if err := q.SetAttrSelection([]string{"Name", "Size", "Generation", "Updated"}); err != nil {
			yield(bucket.Info{}, b.errorf("list", prefix, err))
			return
		}
		it := b.h.Objects(ctx, q)
		for {
			a, err := it.Next()
			if err == iterator.Done {
				return
			}
			if err != nil {
				yield(bucket.Info{}, b.errorf("list", prefix, translate(err)))
				return
			}
			if !yield(b.info(a), nil) {
				return
			}
		}
	}
}

// Delete implements bucket.Bucket.
func (b *Bucket) Delete(ctx context.Context, name string) error {
	if err := bucket.CheckName(name); err != nil {
		return b.errorf("delete", name, err)
	}
	err := translate(b.h.Object(b.prefix + name).Delete(ctx))
	if err != nil && !errors.Is(err, bucket.ErrNotFound) {
		return b.errorf("delete", name, err)
	}
	return nil
}
