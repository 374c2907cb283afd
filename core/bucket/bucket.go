// Package bucket is the object-storage contract kstreams keeps state
// snapshots in: a flat namespace of immutable-once-written objects with put,
// get, ordered listing, delete and conditional writes. Drivers (stores/s3,
// stores/gcs) implement Bucket over a cloud service; Dir implements it over a
// local directory for tests and examples. The snapshot logic that uses a
// Bucket is written once, for every driver (package store/snapshot), as
// database/sql is for its drivers.
//
// The conditional writes are the minimum S3 and GCS both offer:
// create-if-absent (S3 If-None-Match: *, GCS ifGenerationMatch=0) and
// compare-and-swap on the version a read returned (S3 If-Match: <etag>, GCS
// ifGenerationMatch=<generation>). They are what lets a newer owner of a
// task fence an older one: see ErrPreconditionFailed.
//
// Every driver runs the conformance suite in bucket/buckettest.
package bucket

import (
	"context"
	"errors"
	"io"
	"iter"
	"time"
)

// Bucket is a flat namespace of objects named by strings. Names are
// non-empty, valid UTF-8, at most 1024 bytes, and may contain '/'; listing
// orders them by their bytes. Implementations are safe for concurrent use.
//
// Errors are wrapped with the driver's context; test them with errors.Is
// against ErrNotFound and ErrPreconditionFailed.
type Bucket interface {
	// Put writes the size bytes read from r as the object name, replacing
	// any object of that name unless cond says otherwise, and returns the new
	// object's version. size must be the exact length of r's contents.
	// The object becomes visible whole or not at all.
	//
	// A write refused by cond returns an error wrapping
	// ErrPreconditionFailed and leaves the object as it was.
	Put(ctx context.Context, name string, r io.Reader, size int64, cond Cond) (version string, err error)
	// Get opens the object name for reading. The caller must close the
	// reader. A missing object returns an error wrapping ErrNotFound.
	Get(ctx context.Context, name string) (io.ReadCloser, Info, error)
	// Stat returns the object's attributes without its contents; a missing
	// object returns an error wrapping ErrNotFound.
	Stat(ctx context.Context, name string) (Info, error)
	// List yields the objects whose names start with prefix in ascending
	// order of their names (bytes.Compare). An error ends the listing: it
	// is yielded last with a zero Info. Objects written or deleted while
	// listing may or may not be seen.
	List(ctx context.Context, prefix string) iter.Seq2[Info, error]
	// Delete removes the object name. Deleting a missing object is not an
	// error (S3 cannot tell the two apart).
	Delete(ctx context.Context, name string) error
}

// Info describes one object.
type Info struct {
	// Name is the object's full name.
	Name string
	// Size is the object's length in bytes.
	Size int64
	// Version identifies this write of the object, for IfMatch: an S3 ETag,
	// a GCS generation, an opaque token for Dir. Opaque: compare it only for
	// equality. (An S3 ETag of a single-part upload is the contents' MD5, so
	// rewriting an object with identical bytes keeps its version; nothing
	// in kstreams rewrites an object it compares with identical bytes.)
	Version string
	// Modified is when the object was last written, as the service records
	// it.
	Modified time.Time
}

// Cond is the condition of a Put. The zero Cond writes unconditionally.
type Cond struct {
	ifAbsent bool
	ifMatch  string
}

// IfAbsent is the condition of a Put that creates the object only if no
// object of that name exists (S3 If-None-Match: *, GCS ifGenerationMatch=0).
// Of concurrent creations exactly one succeeds.
var IfAbsent = Cond{ifAbsent: true}

// IfMatch returns the condition of a Put that replaces the object only if
// its current version is version (S3 If-Match, GCS ifGenerationMatch): a
// compare-and-swap. Of concurrent replacements of one version exactly one
// succeeds. It fails if the object is missing. An empty version is invalid.
func IfMatch(version string) Cond { return Cond{ifMatch: version} }

// IsAbsent reports whether c is IfAbsent.
func (c Cond) IsAbsent() bool { return c.ifAbsent }

// MatchVersion returns the version of an IfMatch condition, and ok false
// for other conditions.
func (c Cond) MatchVersion() (version string, ok bool) { return c.ifMatch, c.ifMatch != "" }

// IsZero reports whether c is unconditional.
func (c Cond) IsZero() bool { return c == Cond{} }

func (c Cond) String() string {
	switch {
	case c.ifAbsent:
		return "if absent"
	case c.ifMatch != "":
		return "if version " + c.ifMatch
	}
	return "unconditional"
}

// ErrNotFound is wrapped by the errors of Get and Stat on a missing object.
var ErrNotFound = errors.New("bucket: object not found")

// ErrPreconditionFailed is wrapped by the error of a Put whose condition did
// not hold: the object existed (IfAbsent), or was missing or had another
// version (IfMatch).
var ErrPreconditionFailed = errors.New("bucket: precondition failed")

// ErrConditionalWritesIgnored is wrapped by the error of CheckConditional
// when a bucket accepted a write its condition should have refused: some
// S3-compatible servers ignore If-None-Match and If-Match. State that needs
// fencing cannot be kept in such a bucket.
var ErrConditionalWritesIgnored = errors.New("bucket: the service ignores conditional writes")
