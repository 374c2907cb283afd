package pebble

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/kstreams-go/kstreams/core/store"
)

func TestCheckpointRestore(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts []Option
	}{{"wal", nil}, {"nowal", []Option{WithoutWAL()}}} {
		t.Run(mode.name, func(t *testing.T) {
			// No compactions: they would delete the source's table files,
			// and with them the second link this test looks for.
			noCompactions := WithPebbleOptions(func(o *pebbledb.Options) { o.DisableAutomaticCompactions = true })
			src := openTemp(t, append(mode.opts, noCompactions)...)
			defer src.Close()
			var batch store.Batch
			for i := range 2000 {
				batch.Set(fmt.Appendf(nil, "k%04d", i), fmt.Appendf(nil, "v%d", i))
			}
			if err := src.Write(&batch); err != nil {
				t.Fatal(err)
			}
			if err := src.Flush(); err != nil {
				t.Fatal(err)
			}
			// Written but not flushed: Checkpoint must include it anyway.
			mustSet(t, src, "unflushed", "yes")
			if err := src.Delete([]byte("k0000")); err != nil {
				t.Fatal(err)
			}

			cp := filepath.Join(t.TempDir(), "cp")
			if err := src.Checkpoint(cp); err != nil {
				t.Fatal(err)
			}
			// Writes after the checkpoint are not in it.
			mustSet(t, src, "after", "x")
			mustSet(t, src, "k0001", "changed")

			// The table files are hard links to the store's own.
			linked := 0
			entries, err := os.ReadDir(cp)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".sst") {
					fi, err := os.Stat(filepath.Join(cp, e.Name()))
					if err != nil {
						t.Fatal(err)
					}
					if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
						linked++
					}
				}
			}
			if linked == 0 {
				t.Fatalf("no hard-linked table file in the checkpoint: %v", entries)
			}

			for round := range 2 {
				dst, err := OpenCheckpoint(cp, t.TempDir(), mode.opts...)
				if err != nil {
					t.Fatal(err)
				}
				wantGet(t, dst, "unflushed", "yes", true)
				wantGet(t, dst, "k0000", "", false)
				wantGet(t, dst, "k0001", "v1", true)
				wantGet(t, dst, "after", "", false)
				n := 0
				for _, err := range dst.Range(nil, nil) {
					if err != nil {
						t.Fatal(err)
					}
					n++
				}
				if n != 2000 {
					t.Fatalf("round %d: restored store holds %d entries, want 2000", round, n)
				}
				// Writing to the restored store leaves the checkpoint
				// unchanged: the second round restores it again.
				for i := range 3000 {
					mustSet(t, dst, fmt.Sprintf("k%04d", i), "overwritten")
				}
				if err := dst.DeleteRange(nil, nil); err != nil {
					t.Fatal(err)
				}
				if err := dst.Checkpoint(filepath.Join(t.TempDir(), "cp2")); err != nil {
					t.Fatal(err) // flushes the memtable into new table files
				}
				if err := dst.Close(); err != nil {
					t.Fatal(err)
				}
			}
			// The source store is unaffected.
			wantGet(t, src, "after", "x", true)
			wantGet(t, src, "k0001", "changed", true)
		})
	}
}

func TestCheckpointErrors(t *testing.T) {
	b := openTemp(t)
	defer b.Close()
	mustSet(t, b, "k", "v")
	cp := t.TempDir() // exists
	if err := b.Checkpoint(cp); err == nil || !strings.Contains(err.Error(), cp) {
		t.Fatalf("Checkpoint into an existing directory: %v", err)
	}
	cp = filepath.Join(cp, "cp")
	if err := b.Checkpoint(cp); err != nil {
		t.Fatal(err)
	}

	// Restoring over an existing store is refused and leaves it alone.
	storeDir := t.TempDir()
	existing, err := Open(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, existing, "mine", "1")
	if err := existing.Flush(); err != nil {
		t.Fatal(err)
	}
	existing.Close()
	if err := RestoreCheckpoint(cp, storeDir); err == nil || !strings.Contains(err.Error(), "remove it first") {
		t.Fatalf("RestoreCheckpoint over a store: %v", err)
	}
	existing, err = Open(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	wantGet(t, existing, "mine", "1", true)
	existing.Close()

	// A missing checkpoint fails without leaving a directory behind.
	storeDir = t.TempDir()
	if err := RestoreCheckpoint(filepath.Join(cp, "missing"), storeDir); err == nil {
		t.Fatal("RestoreCheckpoint of a missing directory succeeded")
	}
	if _, err := os.Stat(filepath.Join(storeDir, DBDir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed restore left %s: %v", DBDir, err)
	}

	// A checkpoint of a store with a TTL opens only with a TTL.
	ttl := openTemp(t, WithTTL(time.Hour))
	defer ttl.Close()
	mustSet(t, ttl, "k", "v")
	cp = filepath.Join(t.TempDir(), "cp")
	if err := ttl.Checkpoint(cp); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCheckpoint(cp, t.TempDir()); err == nil || !strings.Contains(err.Error(), "with a TTL") {
		t.Fatalf("opening a TTL checkpoint without a TTL: %v", err)
	}
	restored, err := OpenCheckpoint(cp, t.TempDir(), WithTTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	wantGet(t, restored, "k", "v", true)
}

// The way an object-storage module restores a task's store: fetch the
// checkpoint, restore it into the instance directory, then let the Supplier
// open it.
func TestRestoreBeforeSupplier(t *testing.T) {
	src := openTemp(t)
	mustSet(t, src, "k", "v")
	cp := filepath.Join(t.TempDir(), "cp")
	if err := src.Checkpoint(cp); err != nil {
		t.Fatal(err)
	}
	src.Close()

	supply := Supplier()
	restoring := func(bc store.BackendContext) (store.Backend, error) {
		if err := RestoreCheckpoint(cp, bc.Dir); err != nil {
			return nil, err
		}
		return supply(bc)
	}
	b, err := restoring(store.BackendContext{Store: "s", Task: "0_0", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	wantGet(t, b, "k", "v", true)
}
