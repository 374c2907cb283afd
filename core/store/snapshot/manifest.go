package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/url"
	"path"
	"strconv"
	"time"

	"github.com/kstreams-go/kstreams/core/bucket"
	"github.com/kstreams-go/kstreams/core/store"
)

// manifestFormat is the version of the manifest's JSON layout.
const manifestFormat = 1

// maxManifestSize bounds the manifest a reader accepts: a store of 100,000
// files fits.
const maxManifestSize = 64 << 20

// Manifest is the commit point of one snapshot of one store instance: the
// files of a checkpoint of its local working copy, the changelog offset or
// the input offsets it covers, and the epoch of the owner that wrote it. It is kept, as JSON, in
// the instance's "manifest" object, which every owner replaces only by
// compare-and-swap on the version it last read or wrote.
type Manifest struct {
	// Format is the layout version (1).
	Format int `json:"format"`
	// App, Store and Task name the store instance.
	App   string `json:"app"`
	Store string `json:"store"`
	Task  string `json:"task"`
	// Epoch is the owner epoch: raised by each open, so that an older
	// owner's compare-and-swap fails.
	Epoch int64 `json:"epoch"`
	// Seq counts the manifest's writes.
	Seq int64 `json:"seq"`
	// Offset is the changelog offset the files cover (store.OffsetKeeper),
	// -1 for none.
	Offset int64 `json:"offset"`
	// Inputs are the task's input offsets the files cover
	// (store.InputOffsetKeeper, stores without changelog), nil for none.
	Inputs store.InputOffsets `json:"inputs"`
	// Files are the checkpoint's files, by relative path (slash-separated).
	Files []File `json:"files"`
	// Written is when the owner wrote this manifest.
	Written time.Time `json:"written"`
	// Kept are earlier snapshots with input offsets, newest first, that
	// store.InputRewinder can return to (WithKeptSnapshots). They live in
	// the manifest, so that they change in the same compare-and-swap as the
	// current snapshot, and the garbage collector keeps their files.
	Kept []Kept `json:"kept,omitempty"`
}

// Kept is an earlier snapshot a manifest keeps: its sequence number, its
// input offsets and its files.
type Kept struct {
	Seq     int64              `json:"seq"`
	Inputs  store.InputOffsets `json:"inputs"`
	Files   []File             `json:"files"`
	Written time.Time          `json:"written"`
}

// File is one file of a checkpoint: its path relative to the checkpoint
// directory, its contents' SHA-256 and the epoch of the owner that uploaded
// them, which together name the object holding them.
type File struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Epoch  int64  `json:"epoch"`
}

// allFiles yields the files of the current snapshot and of the kept ones
// (repeating those they share).
func (m *Manifest) allFiles() iter.Seq[File] {
	return func(yield func(File) bool) {
		for _, f := range m.Files {
			if !yield(f) {
				return
			}
		}
		for _, k := range m.Kept {
			for _, f := range k.Files {
				if !yield(f) {
					return
				}
			}
		}
	}
}

// layout names the objects of one store instance in the bucket:
//
//	<prefix><app>/<store>/<task>/manifest                  the current Manifest
//	<prefix><app>/<store>/<task>/files/<sha256>-<epoch>    checkpoint files
//
// A file object is named by its contents and by the epoch of the owner that
// uploaded it: an owner never writes an object an older owner could list
// (see Backend.collectGarbage). The app, store and task names are
// path-escaped.
type layout struct{ dir string }

func newLayout(prefix string, bc store.BackendContext) layout {
	return layout{dir: prefix + path.Join(url.PathEscape(bc.App), url.PathEscape(bc.Store), url.PathEscape(bc.Task)) + "/"}
}

func (l layout) manifest() string    { return l.dir + "manifest" }
func (l layout) filesPrefix() string { return l.dir + "files/" }
func (l layout) file(f File) string {
	return l.dir + "files/" + f.SHA256 + "-" + strconv.FormatInt(f.Epoch, 10)
}

// readManifest returns the instance's manifest and its version, or
// bucket.ErrNotFound (wrapped).
func readManifest(ctx context.Context, b bucket.Bucket, name string) (*Manifest, string, error) {
	r, info, err := b.Get(ctx, name)
	if err != nil {
		return nil, "", err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxManifestSize+1))
	if err != nil {
		return nil, "", fmt.Errorf("reading manifest %s: %w", name, err)
	}
	if len(data) > maxManifestSize {
		return nil, "", fmt.Errorf("manifest %s is larger than %d bytes", name, maxManifestSize)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, "", fmt.Errorf("manifest %s: %w", name, err)
	}
	if m.Format != manifestFormat {
		return nil, "", fmt.Errorf("manifest %s has format %d; this version of kstreams reads format %d", name, m.Format, manifestFormat)
	}
	if err := m.validate(); err != nil {
		return nil, "", fmt.Errorf("manifest %s: %w", name, err)
	}
	return &m, info.Version, nil
}

// validate refuses input offsets that could not have been written (an
// empty topic, a negative offset).
func (m *Manifest) validate() error {
	if m.Inputs != nil {
		if _, err := m.Inputs.AppendBinary(nil); err != nil {
			return fmt.Errorf("input offsets: %w", err)
		}
	}
	for _, k := range m.Kept {
		if k.Inputs == nil {
			return fmt.Errorf("kept snapshot seq %d has no input offsets", k.Seq)
		}
		if _, err := k.Inputs.AppendBinary(nil); err != nil {
			return fmt.Errorf("kept snapshot seq %d: input offsets: %w", k.Seq, err)
		}
	}
	return nil
}

// writeManifest writes m with cond and returns its new version.
func writeManifest(ctx context.Context, b bucket.Bucket, name string, m *Manifest, cond bucket.Cond) (string, error) {
	data, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encoding manifest %s: %w", name, err)
	}
	return b.Put(ctx, name, bytes.NewReader(data), int64(len(data)), cond)
}

// errFencedBy returns the error of an owner whose epoch was overtaken.
func errFencedBy(mine, theirs int64) error {
	return fmt.Errorf("owner epoch %d, the bucket's manifest is at epoch %d: %w", mine, theirs, store.ErrFenced)
}
