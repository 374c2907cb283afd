package pebble

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/kstreams-go/kstreams/core/store"
)

// Checkpoint implements store.Checkpointer. It writes the memtables out as
// table files, then creates dir (which must not exist) holding a complete,
// openable copy of the store: the table files (hard links to the store's own
// when dir is on the same file system, copies otherwise) plus small copies
// of the manifest, options and format marker files.
//
// Table files never change once written, so consecutive checkpoints share
// most of them: an uploader can skip the files it has already uploaded (by
// name) and send only the new ones. Every write that returned before
// Checkpoint was called is in the checkpoint. Reopen a checkpoint with
// RestoreCheckpoint or OpenCheckpoint.
func (b *Backend) Checkpoint(dir string) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return store.ErrClosed
	}
	// Flush first: without a write-ahead log the memtables' contents would
	// be missing from the checkpoint, and with one they would be in a copy
	// of the log instead of in immutable table files.
	b.flushMu.Lock()
	n := b.writes.Load()
	err := b.db.Flush()
	if err == nil {
		b.flushed = n
	}
	b.flushMu.Unlock()
	if err != nil {
		return b.errorf("checkpoint to %s: flush: %w", dir, err)
	}
	if err := b.db.Checkpoint(dir, pebbledb.WithFlushedWAL()); err != nil {
		return b.errorf("checkpoint to %s: %w", dir, err)
	}
	return nil
}

// RestoreCheckpoint makes storeDir hold the store captured in checkpoint (a
// directory written by Backend.Checkpoint), so that Open(storeDir) or a
// Supplier given storeDir as BackendContext.Dir opens it. Table files are
// hard-linked when both directories are on one file system, copied
// otherwise; the other files are always copied, because Pebble appends to
// them. The checkpoint is left unchanged and can be restored again.
//
// storeDir/pebble must not exist or be empty: remove an outdated store
// first. If the restore fails, it removes what it wrote.
//
// To restore stores from snapshots before a task opens them, wrap a
// Supplier: fetch the checkpoint, call RestoreCheckpoint(checkpoint,
// bc.Dir), then call the Supplier.
func RestoreCheckpoint(checkpoint, storeDir string) (err error) {
	dst := filepath.Join(storeDir, DBDir)
	if entries, err := os.ReadDir(dst); err == nil && len(entries) > 0 {
		return fmt.Errorf("pebble store %s: restore from checkpoint %s: the directory already holds a store; remove it first", dst, checkpoint)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pebble store %s: restore from checkpoint %s: %w", dst, checkpoint, err)
	}
	entries, err := os.ReadDir(checkpoint)
	if err != nil {
		return fmt.Errorf("pebble store %s: restore from checkpoint: %w", dst, err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("pebble store %s: restore from checkpoint %s: %w", dst, checkpoint, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dst)
		}
	}()
	for _, e := range entries {
		if !e.Type().IsRegular() {
			return fmt.Errorf("pebble store %s: restore from checkpoint %s: unexpected non-file %s", dst, checkpoint, e.Name())
		}
		src, to := filepath.Join(checkpoint, e.Name()), filepath.Join(dst, e.Name())
		if immutable(e.Name()) {
			if os.Link(src, to) == nil {
				continue
			}
		}
		if err := copyFile(src, to); err != nil {
			return fmt.Errorf("pebble store %s: restore from checkpoint %s: %w", dst, checkpoint, err)
		}
	}
	if err := syncDir(dst); err != nil {
		return fmt.Errorf("pebble store %s: restore from checkpoint %s: %w", dst, checkpoint, err)
	}
	if err := syncDir(storeDir); err != nil {
		return fmt.Errorf("pebble store %s: restore from checkpoint %s: %w", dst, checkpoint, err)
	}
	return nil
}

// OpenCheckpoint restores checkpoint into storeDir (see RestoreCheckpoint)
// and opens it (see Open).
func OpenCheckpoint(checkpoint, storeDir string, opts ...Option) (*Backend, error) {
	if err := RestoreCheckpoint(checkpoint, storeDir); err != nil {
		return nil, err
	}
	return Open(storeDir, opts...)
}

// immutable reports whether a Pebble file is never modified once written:
// table (.sst) and blob (.blob) files. Those may be shared by hard links.
func immutable(name string) bool {
	return strings.HasSuffix(name, ".sst") || strings.HasSuffix(name, ".blob")
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
		return fmt.Errorf("copying %s: %w", src, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("syncing %s: %w", dst, err)
	}
	return out.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
