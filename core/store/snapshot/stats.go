package snapshot

import (
	"context"
	"io"
	"iter"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kstreams-go/kstreams/core/bucket"
	"github.com/kstreams-go/kstreams/core/store"
)

// The operations a Backend reports (store.StatsReporter): the requests it
// makes to the bucket, by kind.
const (
	opUpload      = "upload"       // Put of a checkpoint file
	opDownload    = "download"     // Get of a checkpoint file (from the request to the end of the body)
	opPutManifest = "put_manifest" // Put of the manifest (snapshots, claims, rewinds)
	opGetManifest = "get_manifest" // Get of the manifest
	opStat        = "stat"         // Stat of the manifest (WithBackgroundUploads)
	opList        = "list"         // a listing of the files (garbage collection)
	opDelete      = "delete"       // Delete of a garbage file
)

var statOps = []string{opUpload, opDownload, opPutManifest, opGetManifest, opStat, opList, opDelete}

// stats counts one store instance's bucket requests.
type stats struct {
	ops    map[string]*store.StatsCounter
	closed atomic.Bool
}

func newStats() *stats {
	s := &stats{ops: map[string]*store.StatsCounter{}}
	for _, op := range statOps {
		s.ops[op] = &store.StatsCounter{}
	}
	return s
}

func (s *stats) load() store.Stats {
	out := store.Stats{Ops: map[string]store.OpStats{}, Closed: s.closed.Load()}
	for op, c := range s.ops {
		if st := c.Load(); st.RoundTrips > 0 {
			out.Ops[op] = st
		}
	}
	return out
}

// statsBucket counts the requests made through it.
type statsBucket struct {
	bucket.Bucket
	st *stats
}

func isManifest(name string) bool { return strings.HasSuffix(name, "/manifest") }

func (b *statsBucket) Put(ctx context.Context, name string, r io.Reader, size int64, cond bucket.Cond) (string, error) {
	op := opUpload
	if isManifest(name) {
		op = opPutManifest
	}
	start := time.Now()
	v, err := b.Bucket.Put(ctx, name, r, size, cond)
	b.st.ops[op].Add(int(size), 0, time.Since(start), err)
	return v, err
}

func (b *statsBucket) Get(ctx context.Context, name string) (io.ReadCloser, bucket.Info, error) {
	op := opDownload
	if isManifest(name) {
		op = opGetManifest
	}
	start := time.Now()
	r, info, err := b.Bucket.Get(ctx, name)
	if err != nil {
		b.st.ops[op].Add(0, 0, time.Since(start), err)
		return nil, info, err
	}
	return &countingReader{ReadCloser: r, c: b.st.ops[op], start: start}, info, nil
}

func (b *statsBucket) Stat(ctx context.Context, name string) (bucket.Info, error) {
	start := time.Now()
	info, err := b.Bucket.Stat(ctx, name)
	b.st.ops[opStat].Add(0, 0, time.Since(start), err)
	return info, err
}

func (b *statsBucket) List(ctx context.Context, prefix string) iter.Seq2[bucket.Info, error] {
	return func(yield func(bucket.Info, error) bool) {
		start := time.Now()
		var lerr error
		defer func() { b.st.ops[opList].Add(0, 0, time.Since(start), lerr) }()
		for info, err := range b.Bucket.List(ctx, prefix) {
			lerr = err
			if !yield(info, err) {
				return
			}
		}
	}
}

func (b *statsBucket) Delete(ctx context.Context, name string) error {
	start := time.Now()
	err := b.Bucket.Delete(ctx, name)
	b.st.ops[opDelete].Add(0, 0, time.Since(start), err)
	return err
}

// countingReader counts a Get's body and time, and whether it was read
// whole, when it is closed.
type countingReader struct {
	io.ReadCloser
	c     *store.StatsCounter
	start time.Time
	n     int
	err   error
	done  bool
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.n += n
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

func (r *countingReader) Close() error {
	err := r.ReadCloser.Close()
	if !r.done {
		r.done = true
		r.c.Add(0, r.n, time.Since(r.start), r.err)
	}
	return err
}
