// Package snapshot keeps state stores in object storage: a local working
// copy (a store.Checkpointer backend such as stores/pebble's) whose
// checkpoints are uploaded incrementally to a bucket.Bucket, with a manifest
// per store instance as the commit point. It is written once for every
// bucket driver (core/bucket's Dir, stores/s3, stores/gcs), as database/sql
// is for its drivers.
//
//	b := s3.New(client, "my-bucket")
//	counts := store.KeyValue("counts", serde.String, serde.Int64,
//		snapshot.Supplier(b, pebble.SnapshotLocal()))
//
// # How it works
//
// The Backend a Supplier opens implements store.OffsetKeeper. FlushAt
// (called by the runtime before each commit of the task's offsets) takes a
// checkpoint of the working copy into a new local directory, uploads the
// files the bucket does not hold yet under their SHA-256 (table files never
// change, so consecutive snapshots share most of them and a snapshot
// uploads roughly what was written since the previous one), then replaces
// the instance's manifest (the files, the changelog offset, the owner's
// epoch) by compare-and-swap on the version this owner last wrote. The
// manifest is the snapshot's commit point: a crash before it leaves the
// previous snapshot in force and a few unreferenced files for the garbage
// collection.
//
// Opening raises the owner epoch in the manifest by compare-and-swap, so
// that the previous owner's next manifest write fails and its FlushAt
// returns an error wrapping store.ErrFenced; then it downloads the
// manifest's files (skipping those a local cache already holds, checking
// each file's SHA-256) and has the local side restore them (Local.Restore)
// before opening the working copy. StoredOffset is the manifest's offset,
// so the runtime replays only the changelog's tail.
//
// # Garbage
//
// After a snapshot, at most every WithGarbageInterval, the owner deletes
// the instance's file objects its manifest does not reference (left by a
// crash or a fenced owner between upload and manifest, or dropped by later
// snapshots). This needs no grace period: file objects carry the epoch of
// the owner that uploaded them, so a newer owner's uploads are never among
// the objects an older owner listed, and an owner deletes only after
// checking, after its listing, that its epoch is still the manifest's.
package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kstreams-go/kstreams/core/bucket"
	"github.com/kstreams-go/kstreams/core/store"
)

// Local is the local side of snapshot stores: how to open the working copy
// and how to restore one from a checkpoint. stores/pebble's SnapshotLocal
// returns Pebble's.
type Local struct {
	// Open opens the working copy kept in BackendContext.Dir. Its backends
	// must implement store.Checkpointer.
	Open store.Supplier
	// Restore makes dir hold the store captured in checkpoint (a directory
	// written by the backend's Checkpoint), so that Open given dir opens
	// it. dir exists and is empty. The checkpoint's files may be hard links
	// to a cache: Restore must not modify them (link or copy them).
	Restore func(checkpoint, dir string) error
}

// Option configures a Supplier.
type Option func(*config)

type config struct {
	background  bool
	kept        int
	prefix      string
	concurrency int
	timeout     time.Duration
	gcEvery     time.Duration
	interval    time.Duration
	check       bool
	now         func() time.Time
}

// WithPrefix keeps every object under prefix in the bucket (for example
// "prod/"). The objects of one store instance are
// <prefix><app>/<store>/<task>/manifest and .../files/<sha256>.
func WithPrefix(prefix string) Option { return func(c *config) { c.prefix = prefix } }

// WithConcurrency sets how many files one snapshot uploads, or one open
// downloads, at a time (default 4).
func WithConcurrency(n int) Option {
	return func(c *config) { c.concurrency = max(n, 1) }
}

// WithTimeout bounds one open (claim and download) and one flush (upload
// and manifest) as a whole (default 10 minutes). A flush that times out
// returns an error; the runtime then does not commit.
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithGarbageInterval sets how often, at most, an owner deletes the file
// objects its manifest no longer references, after a snapshot (default 10
// minutes; zero: after every snapshot). Each round lists the instance's
// files.
func WithGarbageInterval(d time.Duration) Option {
	return func(c *config) { c.gcEvery = max(d, 0) }
}

// WithSnapshotInterval makes FlushAt upload a snapshot at most every d (the
// default, zero, uploads at every FlushAt, that is at every commit of the
// task). In between, FlushAt returns at once and the stored offset stays
// that of the last snapshot: for a store with a changelog that is safe, as
// a restore replays the changelog from the stored offset, and it bounds the
// requests a busy store makes (two PUTs or more per snapshot) whatever the
// commit interval. Flush (stores without changelog) always uploads.
//
// This relaxes store.OffsetKeeper's contract on purpose: a FlushAt within
// the interval stores nothing, so StoredOffset lags behind it. The runtime
// reads StoredOffset only when a store opens, and calls FlushAt only for
// stores with a changelog, so it restores the same state either way.
func WithSnapshotInterval(d time.Duration) Option {
	return func(c *config) { c.interval = max(d, 0) }
}

// WithBackgroundUploads makes FlushAt (stores with a changelog) return once
// the local checkpoint is taken, and upload it in the background: a commit
// no longer waits for the bucket. At most one upload is in flight per store
// instance: a FlushAt waits for the previous one to finish first. The
// stored offset advances when the manifest lands, so StoredOffset lags
// behind the last FlushAt until then (as with WithSnapshotInterval); a
// restore replays the changelog from it. An upload that fails is logged,
// and the next FlushAt snapshots again; one refused because a newer owner
// opened the instance makes the next FlushAt return store.ErrFenced, and
// so does a FlushAt that finds the manifest replaced (one HEAD request per
// FlushAt). FlushInputs (stores without changelog) always waits for its
// upload: the commit depends on it.
func WithBackgroundUploads() Option { return func(c *config) { c.background = true } }

// WithKeptSnapshots sets how many earlier snapshots with input offsets
// (FlushInputs) a manifest keeps besides the current one, for RewindInputs
// (default 3). Their files stay in the bucket while they are kept.
func WithKeptSnapshots(n int) Option { return func(c *config) { c.kept = max(n, 0) } }

// WithoutConditionalCheck skips the check, made once per Supplier before
// its first open, that the bucket refuses the writes its conditions
// forbid (bucket.CheckConditional). Fencing relies on them.
func WithoutConditionalCheck() Option { return func(c *config) { c.check = false } }

// Supplier returns a store.Supplier whose backends keep their contents in
// b: each opens a working copy with local.Open, restored by local.Restore
// from the instance's last snapshot, and implements store.OffsetKeeper by
// uploading snapshots.
//
// Files are kept in BackendContext.Dir: a cache of the files of the last
// snapshot (so a restart on the same disk downloads nothing) and the working
// copy. Without a Dir, a temporary directory is used and removed on Close.
func Supplier(b bucket.Bucket, local Local, opts ...Option) store.Supplier {
	cfg := config{kept: 3, concurrency: 4, timeout: 10 * time.Minute, gcEvery: 10 * time.Minute, check: true, now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	s := &supplier{b: b, local: local, cfg: cfg}
	return s.open
}

type supplier struct {
	b     bucket.Bucket
	local Local
	cfg   config

	checkMu sync.Mutex
	checked bool
}

// checkConditional runs bucket.CheckConditional until it succeeds once.
func (s *supplier) checkConditional(ctx context.Context) error {
	if !s.cfg.check {
		return nil
	}
	s.checkMu.Lock()
	defer s.checkMu.Unlock()
	if s.checked {
		return nil
	}
	if err := bucket.CheckConditional(ctx, s.b, s.cfg.prefix); err != nil {
		return err
	}
	s.checked = true
	return nil
}

// liveDirs are the working directories of the backends open in this
// process: an open removes the other working directories of its instance
// directory (left by a crash), never a live one.
var (
	liveDirsMu sync.Mutex
	liveDirs   = map[string]bool{}
)

// Backend is a store.Backend whose working copy is local and whose
// snapshots are kept in a bucket. It implements store.OffsetKeeper. It is
// safe for concurrent use; FlushAt and Flush are serialized.
type Backend struct {
	local  store.Backend // replaced only by RewindInputs
	cp     store.Checkpointer
	b      bucket.Bucket // counts its requests in stats
	stats  *stats
	cfg    config
	sup    *supplier
	bc     store.BackendContext
	l      layout
	name   string // "<store> (task <task>)", for messages
	log    *slog.Logger
	epoch  int64
	root   string // the instance directory (BackendContext.Dir or a temporary one)
	work   string // this open's working directory under root
	temp   bool   // root is temporary: removed on Close
	writes atomic.Int64
	fenced atomic.Bool

	mu           sync.Mutex // serializes flushes, rewinds and Close
	closed       bool
	storeDir     string              // the working copy's directory
	pending      chan struct{}       // closed when the background upload ends; nil if none
	pendingErr   error               // its error, once pending is closed
	rewinds      int                 // numbers the working copies of rewinds
	manifest     *Manifest           // the last one this owner read or wrote
	version      string              // its version
	flushedAt    int64               // writes counted when the manifest's checkpoint was taken
	uploaded     map[string]int64    // SHA-256 → epoch of a file object this owner may reference
	prevCP       string              // the previous checkpoint's directory, kept for the hash memo
	memo         map[string]fileMemo // by relative name, for the files of prevCP
	cpSeq        int
	lastGC       time.Time
	lastSnapshot time.Time // zero until this owner's first snapshot
	closedOnce   sync.Once
}

type fileMemo struct {
	fi     fs.FileInfo
	sha256 string
}

var (
	_ store.Backend           = (*Backend)(nil)
	_ store.OffsetKeeper      = (*Backend)(nil)
	_ store.InputOffsetKeeper = (*Backend)(nil)
	_ store.InputRewinder     = (*Backend)(nil)
	_ store.StatsReporter     = (*Backend)(nil)
)

// StoreStats implements store.StatsReporter: the instance's requests to the
// bucket since it opened (its claim and download included), by kind:
// "upload" and "download" (checkpoint files), "put_manifest" and
// "get_manifest", "stat", "list" and "delete" (garbage collection).
func (s *Backend) StoreStats() store.Stats { return s.stats.load() }

func (s *supplier) open(bc store.BackendContext) (_ store.Backend, err error) {
	name := fmt.Sprintf("%s (task %s)", bc.Store, bc.Task)
	errorf := func(format string, args ...any) error {
		return fmt.Errorf("snapshot store %s: "+format, append([]any{name}, args...)...)
	}
	log := bc.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout)
	defer cancel()
	if err := s.checkConditional(ctx); err != nil {
		return nil, errorf("the bucket cannot fence stale owners: %w", err)
	}

	root, temp := bc.Dir, false
	if root == "" {
		d, err := os.MkdirTemp("", "kstreams-snapshot-")
		if err != nil {
			return nil, errorf("no state directory given, creating a temporary one: %w", err)
		}
		root, temp = d, true
	}
	defer func() {
		if err != nil && temp {
			os.RemoveAll(root)
		}
	}()

	l := newLayout(s.cfg.prefix, bc)
	st := newStats()
	b := &statsBucket{Bucket: s.b, st: st}
	m, version, err := s.claim(ctx, b, l, bc)
	if err != nil {
		return nil, errorf("claiming ownership: %w", err)
	}
	log = log.With("store", bc.Store, "task", bc.Task, "epoch", m.Epoch)

	work := filepath.Join(root, "open-"+strconv.FormatInt(m.Epoch, 10))
	if err := prepareRoot(root, work); err != nil {
		return nil, errorf("preparing directory %s: %w", root, err)
	}
	defer func() {
		if err != nil {
			releaseWork(work)
		}
	}()
	storeDir := filepath.Join(work, "store")
	lb, cp, err := s.materialize(ctx, b, l, bc, m.Files, root, work, storeDir, "restore", log)
	if err != nil {
		return nil, errorf("%w (manifest seq %d)", err, m.Seq)
	}
	uploaded := map[string]int64{}
	for _, f := range m.Files {
		uploaded[f.SHA256] = f.Epoch
	}
	for _, k := range m.Kept {
		for _, f := range k.Files {
			uploaded[f.SHA256] = f.Epoch
		}
	}
	return &Backend{
		local: lb, cp: cp, b: b, stats: st, cfg: s.cfg, l: l, name: name, log: log,
		sup: s, bc: bc, storeDir: storeDir,
		epoch: m.Epoch, root: root, work: work, temp: temp,
		manifest: m, version: version, uploaded: uploaded, memo: map[string]fileMemo{},
		lastGC: time.Time{},
	}, nil
}

// materialize makes storeDir hold the snapshot of files (downloading those
// the cache under root lacks, through work/<restore>) and opens the working
// copy there.
func (s *supplier) materialize(ctx context.Context, b bucket.Bucket, l layout, bc store.BackendContext, files []File, root, work, storeDir, restore string, log *slog.Logger) (store.Backend, store.Checkpointer, error) {
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return nil, nil, err
	}
	if len(files) > 0 {
		start := time.Now()
		cache := filepath.Join(root, "cache")
		fetched, err := s.download(ctx, b, l, files, cache)
		if err != nil {
			return nil, nil, fmt.Errorf("downloading snapshot: %w", err)
		}
		restoreDir := filepath.Join(work, restore)
		if err := assemble(files, cache, restoreDir); err != nil {
			return nil, nil, fmt.Errorf("assembling snapshot: %w", err)
		}
		if err := s.local.Restore(restoreDir, storeDir); err != nil {
			return nil, nil, fmt.Errorf("restoring snapshot: %w", err)
		}
		if err := os.RemoveAll(restoreDir); err != nil {
			return nil, nil, err
		}
		log.Info("restored snapshot", "files", len(files), "downloaded", fetched, "took", time.Since(start))
	}
	lbc := bc
	lbc.Dir = storeDir
	lb, err := s.local.Open(lbc)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the working copy: %w", err)
	}
	cp, ok := lb.(store.Checkpointer)
	if !ok {
		lb.Close()
		return nil, nil, fmt.Errorf("the local backend %T does not implement store.Checkpointer", lb)
	}
	return lb, cp, nil
}

// claim raises the owner epoch in the instance's manifest (creating it if
// missing) by compare-and-swap, retrying while concurrent opens race.
func (s *supplier) claim(ctx context.Context, b bucket.Bucket, l layout, bc store.BackendContext) (*Manifest, string, error) {
	const attempts = 20
	var lastErr error
	for range attempts {
		m, version, err := readManifest(ctx, b, l.manifest())
		cond := bucket.IfMatch(version)
		switch {
		case errors.Is(err, bucket.ErrNotFound):
			m = &Manifest{Format: manifestFormat, App: bc.App, Store: bc.Store, Task: bc.Task, Offset: -1}
			cond = bucket.IfAbsent
		case err != nil:
			return nil, "", err
		}
		m.Epoch++
		m.Seq++
		m.Written = s.cfg.now().UTC()
		version, err = writeManifest(ctx, b, l.manifest(), m, cond)
		if err == nil {
			return m, version, nil
		}
		if !errors.Is(err, bucket.ErrPreconditionFailed) {
			return nil, "", err
		}
		lastErr = err // another open raced this one: read again
	}
	return nil, "", fmt.Errorf("%d attempts lost a race with other opens; last: %w", attempts, lastErr)
}

// prepareRoot creates root and work, and removes the working directories of
// earlier opens that are not live in this process (left by a crash).
func prepareRoot(root, work string) error {
	liveDirsMu.Lock()
	defer liveDirsMu.Unlock()
	entries, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(root, e.Name())
		if strings.HasPrefix(e.Name(), "open-") && !liveDirs[p] {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
		}
	}
	if liveDirs[work] {
		return fmt.Errorf("working directory %s is in use by another open of the same epoch", work)
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	liveDirs[work] = true
	return nil
}

func releaseWork(work string) {
	liveDirsMu.Lock()
	defer liveDirsMu.Unlock()
	delete(liveDirs, work)
	os.RemoveAll(work)
}

// download fetches the files missing from cache, checking their SHA-256,
// and returns how many it fetched.
func (s *supplier) download(ctx context.Context, b bucket.Bucket, l layout, files []File, cache string) (int, error) {
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return 0, err
	}
	var need []File
	seen := map[string]bool{}
	for _, f := range files {
		if seen[f.SHA256] {
			continue
		}
		seen[f.SHA256] = true
		if fi, err := os.Stat(filepath.Join(cache, f.SHA256)); err == nil && fi.Size() == f.Size {
			continue
		}
		need = append(need, f)
	}
	err := parallel(ctx, s.cfg.concurrency, need, func(ctx context.Context, f File) error {
		return fetch(ctx, b, l.file(f), f, cache)
	})
	return len(need), err
}

// fetch downloads one file into cache/<sha256>, through a temporary file.
func fetch(ctx context.Context, b bucket.Bucket, object string, f File, cache string) error {
	r, _, err := b.Get(ctx, object)
	if err != nil {
		return fmt.Errorf("file %s: %w", f.Name, err)
	}
	defer r.Close()
	tmp, err := os.CreateTemp(cache, ".download-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err != nil {
		tmp.Close()
		return fmt.Errorf("file %s: downloading %s: %w", f.Name, object, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 || n != f.Size {
		tmp.Close()
		return fmt.Errorf("file %s: object %s holds %d bytes with SHA-256 %s; the manifest says %d bytes, %s", f.Name, object, n, got, f.Size, f.SHA256)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(cache, f.SHA256))
}

// assemble lays files out in dir under their names, as hard links to the
// cache (copies where links fail).
func assemble(files []File, cache, dir string) error {
	for _, f := range files {
		if !filepath.IsLocal(filepath.FromSlash(f.Name)) {
			return fmt.Errorf("manifest names a file outside the checkpoint: %q", f.Name)
		}
		to := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		from := filepath.Join(cache, f.SHA256)
		if os.Link(from, to) == nil {
			continue
		}
		if err := copyFile(from, to); err != nil {
			return fmt.Errorf("file %s: %w", f.Name, err)
		}
	}
	return nil
}

// parallel runs fn on every item, n at a time, and returns the first error
// (the others are canceled).
func parallel[T any](ctx context.Context, n int, items []T, fn func(context.Context, T) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(ctx, it); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func (s *Backend) errorf(format string, args ...any) error {
	return fmt.Errorf("snapshot store %s: "+format, append([]any{s.name}, args...)...)
}

// writable returns the error writes get once this owner was fenced.
func (s *Backend) writable() error {
	if s.fenced.Load() {
		return s.errorf("refusing a write: %w", store.ErrFenced)
	}
	return nil
}

// wrote counts a write once it is applied: a snapshot records the count it
// read before its checkpoint, so a write counted is in the checkpoint, and
// a FlushAt with nothing counted since may skip the upload.
func (s *Backend) wrote(err error) error {
	if err == nil {
		s.writes.Add(1)
	}
	return err
}

// Get implements store.Backend from the working copy.
func (s *Backend) Get(key []byte) ([]byte, bool, error) { return s.local.Get(key) }

// Range implements store.Backend from the working copy.
func (s *Backend) Range(lo, hi []byte) iter.Seq2[store.Entry, error] { return s.local.Range(lo, hi) }

// Set implements store.Backend on the working copy; refused once fenced.
func (s *Backend) Set(key, value []byte) error {
	if err := s.writable(); err != nil {
		return err
	}
	return s.wrote(s.local.Set(key, value))
}

// Delete implements store.Backend on the working copy; refused once fenced.
func (s *Backend) Delete(key []byte) error {
	if err := s.writable(); err != nil {
		return err
	}
	return s.wrote(s.local.Delete(key))
}

// DeleteRange implements store.Backend on the working copy; refused once
// fenced.
func (s *Backend) DeleteRange(lo, hi []byte) error {
	if err := s.writable(); err != nil {
		return err
	}
	return s.wrote(s.local.DeleteRange(lo, hi))
}

// Write implements store.Backend on the working copy; refused once fenced.
func (s *Backend) Write(b *store.Batch) error {
	if err := s.writable(); err != nil {
		return err
	}
	return s.wrote(s.local.Write(b))
}

// settle waits for the background upload in flight, if any, and returns
// its error. Every method that reads or changes the manifest state calls
// it first, with mu held: the background upload owns that state until it
// ends. Called with mu held.
func (s *Backend) settle() error {
	if s.pending == nil {
		return nil
	}
	<-s.pending
	s.pending = nil
	err := s.pendingErr
	s.pendingErr = nil
	if err != nil && !errors.Is(err, store.ErrFenced) {
		// The snapshot is not in the bucket; the stored offset stays the
		// previous one, and the next FlushAt snapshots again.
		s.log.Warn("background snapshot upload failed", "error", err)
	}
	return err
}

// settled is settle for methods other than FlushAt: an upload's failure
// was logged, and a fenced owner's is reported by writable.
func (s *Backend) settled() { s.settle() }

// Flush implements store.Backend: it uploads a snapshot keeping the stored
// offset (for stores without changelog, the snapshot is their only copy).
// Once FlushInputs stored input offsets, Flush uploads nothing: a snapshot
// holding writes beyond those offsets would put the state ahead of them.
func (s *Backend) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	s.settled()
	if s.manifest.Inputs != nil {
		return s.writable()
	}
	return s.snapshot(s.manifest.Offset, nil, false)
}

// StoredOffset implements store.OffsetKeeper: the offset of the last
// manifest this owner read or wrote.
func (s *Backend) StoredOffset() (int64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, false, store.ErrClosed
	}
	s.settled()
	return s.manifest.Offset, s.manifest.Offset >= 0, nil
}

// FlushAt implements store.OffsetKeeper: it uploads a snapshot whose
// manifest records offset. FlushAt(-1) only rewrites the manifest without
// offset (the runtime then restores the store from scratch). An error
// wrapping store.ErrFenced means a newer owner opened the instance. The
// manifest then records no input offsets (the changelog is in charge).
func (s *Backend) FlushAt(offset int64) error {
	if offset < -1 {
		return s.errorf("FlushAt(%d): invalid offset", offset)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	if err := s.settle(); errors.Is(err, store.ErrFenced) {
		return err
	}
	if offset >= 0 && s.cfg.interval > 0 && !s.lastSnapshot.IsZero() && s.cfg.now().Sub(s.lastSnapshot) < s.cfg.interval {
		// The changelog holds what the snapshot lacks; the runtime replays
		// it from the stored offset.
		return s.writable()
	}
	if offset >= 0 && s.cfg.background {
		return s.startUpload(offset)
	}
	return s.snapshot(offset, nil, offset == -1)
}

// startUpload takes a checkpoint and uploads it in the background
// (WithBackgroundUploads), leaving pending set. Called with mu held, no
// upload in flight.
func (s *Backend) startUpload(offset int64) error {
	if err := s.writable(); err != nil {
		return err
	}
	writes := s.writes.Load()
	unchanged := writes == s.flushedAt
	if unchanged && offset == s.manifest.Offset && s.manifest.Inputs == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout)
	if err := s.checkFenced(ctx); err != nil {
		cancel()
		return err
	}
	dir := ""
	if !unchanged {
		var err error
		if dir, err = s.checkpoint(); err != nil {
			cancel()
			return err
		}
	}
	done := make(chan struct{})
	s.pending = done
	go func() {
		defer close(done)
		defer cancel()
		next := *s.manifest
		next.Offset, next.Inputs, next.Kept = offset, nil, nil
		next.Seq++
		var n int
		var bytes int64
		if dir != "" {
			files, nf, nb, err := s.upload(ctx, dir)
			if err != nil {
				s.pendingErr = err
				return
			}
			next.Files, n, bytes = files, nf, nb
		}
		s.pendingErr = s.publish(ctx, &next, writes, true, n, bytes)
	}()
	return nil
}

// checkFenced reads the manifest's version (and, if it changed, the
// manifest) and returns an error wrapping store.ErrFenced if a newer owner
// replaced it. Called with mu held.
func (s *Backend) checkFenced(ctx context.Context) error {
	info, err := s.b.Stat(ctx, s.l.manifest())
	if err != nil {
		return s.errorf("reading the manifest's version: %w", err)
	}
	if info.Version == s.version {
		return nil
	}
	cur, _, err := readManifest(ctx, s.b, s.l.manifest())
	if err != nil {
		return s.errorf("reading the manifest: %w", err)
	}
	if cur.Epoch != s.epoch {
		s.fenced.Store(true)
		return s.errorf("%w", errFencedBy(s.epoch, cur.Epoch))
	}
	return nil // our own write landed though its answer was lost; writeManifest copes
}

// StoredInputs implements store.InputOffsetKeeper: the input offsets of the
// last manifest this owner read or wrote, nil if it has none.
func (s *Backend) StoredInputs() (store.InputOffsets, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	s.settled()
	return maps.Clone(s.manifest.Inputs), nil
}

// FlushInputs implements store.InputOffsetKeeper (stores without
// changelog): it uploads a snapshot of every write that returned before the
// call and writes the manifest recording offsets, by compare-and-swap: the
// manifest holds both or neither. It always uploads (WithSnapshotInterval
// does not apply: the runtime commits offsets only once they are in the
// bucket). The previous snapshot with input offsets becomes a kept one
// (WithKeptSnapshots). An error wrapping store.ErrFenced means a newer
// owner opened the instance.
func (s *Backend) FlushInputs(offsets store.InputOffsets) error {
	if offsets == nil {
		offsets = store.InputOffsets{}
	}
	if _, err := offsets.AppendBinary(nil); err != nil {
		return s.errorf("FlushInputs(%v): %w", offsets, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	s.settled()
	return s.snapshot(-1, maps.Clone(offsets), false)
}

// RewindInputs implements store.InputRewinder: it makes the newest
// snapshot whose input offsets equal to (the current one, or a kept one)
// the current snapshot, and replaces the working copy with it: writes since
// that snapshot are dropped. ok is false, and nothing changes, if no
// snapshot has exactly those offsets. The manifest is replaced by
// compare-and-swap, so a fenced owner cannot rewind. It must not run
// concurrently with reads or writes of the store (the runtime calls it when
// the task opens, before processing).
func (s *Backend) RewindInputs(to store.InputOffsets) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, store.ErrClosed
	}
	s.settled()
	if err := s.writable(); err != nil {
		return false, err
	}
	m := s.manifest
	writes := s.writes.Load()
	var target Kept
	var older []Kept
	switch i := slices.IndexFunc(m.Kept, func(k Kept) bool { return k.Inputs.Equal(to) }); {
	case m.Inputs != nil && m.Inputs.Equal(to):
		if writes == s.flushedAt {
			return true, nil // already there
		}
		target, older = Kept{Seq: m.Seq, Inputs: m.Inputs, Files: m.Files}, m.Kept
	case i >= 0:
		target, older = m.Kept[i], m.Kept[i+1:]
	default:
		return false, nil
	}

	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout)
	defer cancel()
	s.rewinds++
	storeDir := filepath.Join(s.work, "store-"+strconv.Itoa(s.rewinds))
	lb, cp, err := s.sup.materialize(ctx, s.b, s.l, s.bc, target.Files, s.root, s.work, storeDir, "rewind-"+strconv.Itoa(s.rewinds), s.log)
	if err != nil {
		os.RemoveAll(storeDir)
		return false, s.errorf("rewinding to input offsets %v (snapshot seq %d): %w", to, target.Seq, err)
	}
	next := *m
	next.Seq++
	next.Offset = -1
	next.Inputs = maps.Clone(target.Inputs)
	next.Files = target.Files
	next.Kept = slices.Clone(older)
	next.Written = s.cfg.now().UTC()
	if err := s.writeManifest(ctx, &next); err != nil {
		lb.Close()
		os.RemoveAll(storeDir)
		return false, err
	}
	old, oldDir := s.local, s.storeDir
	s.local, s.cp, s.storeDir = lb, cp, storeDir
	s.flushedAt = writes
	s.memo = map[string]fileMemo{}
	for _, f := range target.Files {
		s.uploaded[f.SHA256] = f.Epoch
	}
	s.pruneCache()
	s.log.Info("rewound to an earlier snapshot", "inputs", to.String(), "snapshot_seq", target.Seq, "seq", next.Seq)
	if err := old.Close(); err != nil {
		s.log.Warn("closing the working copy replaced by a rewind", "error", err)
	}
	os.RemoveAll(oldDir)
	return true, nil
}

// snapshot uploads a checkpoint and writes the manifest recording offset
// and inputs; with keepFiles, only the manifest is rewritten. Called with
// mu held.
func (s *Backend) snapshot(offset int64, inputs store.InputOffsets, keepFiles bool) error {
	if err := s.writable(); err != nil {
		return err
	}
	writes := s.writes.Load()
	unchanged := writes == s.flushedAt // the manifest's files hold every write
	if unchanged && offset == s.manifest.Offset && (inputs == nil) == (s.manifest.Inputs == nil) && inputs.Equal(s.manifest.Inputs) {
		return nil // nothing changed since the last manifest
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout)
	defer cancel()
	next := *s.manifest
	next.Offset = offset
	next.Inputs = inputs
	next.Seq++
	next.Kept = nil
	if inputs != nil && s.cfg.kept > 0 {
		// Kept snapshots are for rewinding input offsets; a changelog
		// store has no use for them.
		next.Kept = s.manifest.Kept
		if s.manifest.Inputs != nil {
			cur := Kept{Seq: s.manifest.Seq, Inputs: s.manifest.Inputs, Files: s.manifest.Files, Written: s.manifest.Written}
			next.Kept = append([]Kept{cur}, next.Kept...)
		}
		next.Kept = slices.Clone(next.Kept[:min(len(next.Kept), s.cfg.kept)])
	}
	var uploadedBytes int64
	var uploadedFiles int
	if !keepFiles && !unchanged {
		files, n, bytes, err := s.checkpointAndUpload(ctx)
		if err != nil {
			return err
		}
		next.Files, uploadedFiles, uploadedBytes = files, n, bytes
	}
	return s.publish(ctx, &next, writes, !keepFiles, uploadedFiles, uploadedBytes)
}

// publish writes next as the manifest; with snapshotted, its files hold
// the first writes writes (FlushAt(-1) uploads nothing: its writes are not
// in the bucket). Then it prunes the cache and collects garbage when due.
// Called with mu held, or by the background upload.
func (s *Backend) publish(ctx context.Context, next *Manifest, writes int64, snapshotted bool, uploadedFiles int, uploadedBytes int64) error {
	next.Written = s.cfg.now().UTC()
	if err := s.writeManifest(ctx, next); err != nil {
		return err
	}
	if snapshotted {
		s.flushedAt = writes
		s.lastSnapshot = s.cfg.now()
	}
	s.log.Debug("snapshot written", "seq", next.Seq, "offset", next.Offset, "inputs", next.Inputs, "files", len(next.Files), "uploaded_files", uploadedFiles, "uploaded_bytes", uploadedBytes)
	s.pruneCache()
	if s.cfg.now().Sub(s.lastGC) >= s.cfg.gcEvery {
		if err := s.collectGarbage(ctx); err != nil {
			// The snapshot is written; garbage waits for the next round.
			s.log.Warn("snapshot garbage collection failed", "error", err)
		}
	}
	return nil
}

// writeManifest replaces the manifest by compare-and-swap on the version
// this owner last wrote. Called with mu held.
func (s *Backend) writeManifest(ctx context.Context, m *Manifest) error {
	version, err := writeManifest(ctx, s.b, s.l.manifest(), m, bucket.IfMatch(s.version))
	if err == nil {
		s.manifest, s.version = m, version
		return nil
	}
	if !errors.Is(err, bucket.ErrPreconditionFailed) {
		return s.errorf("writing manifest (seq %d): %w", m.Seq, err)
	}
	// Someone else wrote the manifest: a newer owner, unless our own write
	// was applied though its answer was lost.
	cur, version, rerr := readManifest(ctx, s.b, s.l.manifest())
	switch {
	case rerr != nil:
		return s.errorf("writing manifest (seq %d): %w; reading it back: %v", m.Seq, err, rerr)
	case cur.Epoch != s.epoch:
		s.fenced.Store(true)
		return s.errorf("writing manifest (seq %d): %w", m.Seq, errFencedBy(s.epoch, cur.Epoch))
	}
	// Our epoch: our own earlier write landed. Swap on its version.
	s.manifest, s.version = cur, version
	version, err = writeManifest(ctx, s.b, s.l.manifest(), m, bucket.IfMatch(version))
	if err != nil {
		return s.errorf("writing manifest (seq %d) again: %w", m.Seq, err)
	}
	s.manifest, s.version = m, version
	return nil
}

// checkpointAndUpload takes a checkpoint of the working copy, uploads the
// files the bucket does not hold, and returns the checkpoint's file list
// with the number and bytes of files uploaded. Called with mu held.
func (s *Backend) checkpointAndUpload(ctx context.Context) ([]File, int, int64, error) {
	dir, err := s.checkpoint()
	if err != nil {
		return nil, 0, 0, err
	}
	return s.upload(ctx, dir)
}

// checkpoint takes a checkpoint of the working copy into a new directory:
// it holds every write that returned before the call. Called with mu held.
func (s *Backend) checkpoint() (string, error) {
	s.cpSeq++
	dir := filepath.Join(s.work, "checkpoints", strconv.Itoa(s.cpSeq))
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", s.errorf("%w", err)
	}
	if err := s.cp.Checkpoint(dir); err != nil {
		os.RemoveAll(dir)
		return "", s.errorf("checkpoint: %w", err)
	}
	return dir, nil
}

// upload hashes the files of the checkpoint in dir, uploads those the
// bucket does not hold, and returns the checkpoint's file list with the
// number and bytes of files uploaded. Called with mu held, or by the
// background upload (see FlushAt).
func (s *Backend) upload(ctx context.Context, dir string) ([]File, int, int64, error) {
	// The new checkpoint replaces the previous one as the hash memo's base
	// whatever happens next; the previous one's files stay until then, so
	// no new file can reuse their inodes.
	prev := s.prevCP
	s.prevCP = dir
	defer func() {
		if prev != "" {
			os.RemoveAll(prev)
		}
	}()

	var files []File
	memo := map[string]fileMemo{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("checkpoint holds a non-file %s", p)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		sum := ""
		if old, ok := s.memo[rel]; ok && os.SameFile(old.fi, fi) && old.fi.Size() == fi.Size() && old.fi.ModTime().Equal(fi.ModTime()) {
			sum = old.sha256 // the same immutable file as in the previous checkpoint
		} else if sum, err = hashFile(p); err != nil {
			return err
		}
		memo[rel] = fileMemo{fi: fi, sha256: sum}
		files = append(files, File{Name: rel, SHA256: sum, Size: fi.Size()})
		return nil
	})
	if err != nil {
		return nil, 0, 0, s.errorf("reading checkpoint %s: %w", dir, err)
	}
	s.memo = memo

	var todo []File
	seen := map[string]bool{}
	for i, f := range files {
		if epoch, ok := s.uploaded[f.SHA256]; ok {
			files[i].Epoch = epoch
			continue
		}
		files[i].Epoch = s.epoch
		if !seen[f.SHA256] {
			seen[f.SHA256] = true
			todo = append(todo, files[i])
		}
	}
	var bytes atomic.Int64
	cache := filepath.Join(s.root, "cache")
	os.MkdirAll(cache, 0o755)
	err = parallel(ctx, s.cfg.concurrency, todo, func(ctx context.Context, f File) error {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		if _, err := s.b.Put(ctx, s.l.file(f), in, f.Size, bucket.Cond{}); err != nil {
			return fmt.Errorf("uploading %s: %w", f.Name, err)
		}
		bytes.Add(f.Size)
		// Keep a link in the cache so that a restart on this disk downloads
		// nothing (best effort: a copy is not worth it).
		os.Link(p, filepath.Join(cache, f.SHA256))
		return nil
	})
	if err != nil {
		// Files uploaded before the error are uploaded again next time.
		return nil, 0, 0, s.errorf("uploading checkpoint files: %w", err)
	}
	for _, f := range todo {
		s.uploaded[f.SHA256] = s.epoch
	}
	return files, len(todo), bytes.Load(), nil
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// pruneCache removes the cached files the current manifest does not
// reference. Called with mu held.
func (s *Backend) pruneCache() {
	cache := filepath.Join(s.root, "cache")
	entries, err := os.ReadDir(cache)
	if err != nil {
		return
	}
	keep := map[string]bool{}
	for _, f := range s.manifest.Files {
		keep[f.SHA256] = true
	}
	for _, e := range entries {
		if !keep[e.Name()] && !strings.HasPrefix(e.Name(), ".") {
			os.Remove(filepath.Join(cache, e.Name()))
		}
	}
}

// collectGarbage deletes the instance's file objects that the current
// manifest does not reference. Called with mu held, after a successful
// manifest write.
//
// It lists first, then checks that this owner's epoch is still the
// manifest's, then deletes from the listing. A newer owner claims after the
// check, so its uploads (named with its own epoch) came after the listing
// and are not deleted; the files it references from this owner's manifest
// are referenced, so kept.
func (s *Backend) collectGarbage(ctx context.Context) error {
	s.lastGC = s.cfg.now()
	keep := map[string]bool{}
	for f := range s.manifest.allFiles() {
		keep[s.l.file(f)] = true
	}
	var garbage []string
	for info, err := range s.b.List(ctx, s.l.filesPrefix()) {
		if err != nil {
			return err
		}
		if !keep[info.Name] {
			garbage = append(garbage, info.Name)
		}
	}
	if len(garbage) == 0 {
		return nil
	}
	cur, _, err := readManifest(ctx, s.b, s.l.manifest())
	if err != nil {
		return err
	}
	if cur.Epoch != s.epoch {
		return errFencedBy(s.epoch, cur.Epoch)
	}
	for f := range cur.allFiles() {
		keep[s.l.file(f)] = true
	}
	byObject := map[string]string{} // object → SHA-256, for the objects this owner may reference
	for sum, epoch := range s.uploaded {
		byObject[s.l.file(File{SHA256: sum, Epoch: epoch})] = sum
	}
	deleted := 0
	for _, name := range garbage {
		if keep[name] {
			continue
		}
		if err := s.b.Delete(ctx, name); err != nil {
			return err
		}
		if sum, ok := byObject[name]; ok {
			delete(s.uploaded, sum)
		}
		deleted++
	}
	s.log.Debug("snapshot garbage collected", "deleted", deleted)
	return nil
}

// Epoch returns the owner epoch this backend claimed when it opened.
func (s *Backend) Epoch() int64 { return s.epoch }

// Close implements store.Backend: it closes the working copy and removes
// it (the bucket holds the state; the file cache stays for the next open).
// It uploads nothing.
func (s *Backend) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	s.settled() // (its checkpoint is in the working directory)
	s.closed = true
	defer s.stats.closed.Store(true)
	err := s.local.Close()
	releaseWork(s.work)
	if s.temp {
		os.RemoveAll(s.root)
	}
	if err != nil {
		return s.errorf("closing the working copy: %w", err)
	}
	return nil
}
