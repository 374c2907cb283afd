package snapshot_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/store/snapshot"
)

// fileStore is the smallest local backend the engine accepts: an in-memory
// store loaded from, and checkpointed to, one file per first key byte
// ("part-XX"), so that a checkpoint after writes to a few key ranges shares
// the other files with the previous one, as a Pebble checkpoint shares its
// table files.
type fileStore struct {
	*memory.Backend
}

func openFileStore(bc store.BackendContext) (store.Backend, error) {
	fs := &fileStore{Backend: memory.New()}
	entries, err := os.ReadDir(bc.Dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "part-") {
			continue
		}
		if err := fs.load(filepath.Join(bc.Dir, e.Name())); err != nil {
			return nil, err
		}
	}
	return fs, nil
}

func (fs *fileStore) load(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for {
		k, err := readChunk(r)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		v, err := readChunk(r)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if err := fs.Set(k, v); err != nil {
			return err
		}
	}
}

func readChunk(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	_, err = io.ReadFull(r, b)
	return b, err
}

// Checkpoint implements store.Checkpointer.
func (fs *fileStore) Checkpoint(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	parts := map[byte][]byte{}
	for e, err := range fs.Range(nil, nil) {
		if err != nil {
			return err
		}
		first := byte(0)
		if len(e.Key) > 0 {
			first = e.Key[0]
		}
		p := parts[first]
		p = binary.AppendUvarint(p, uint64(len(e.Key)))
		p = append(p, e.Key...)
		p = binary.AppendUvarint(p, uint64(len(e.Value)))
		p = append(p, e.Value...)
		parts[first] = p
	}
	for first, data := range parts {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("part-%02x", first)), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

var fileLocal = snapshot.Local{Open: openFileStore, Restore: restoreFiles}

// restoreFiles is fileStore's restore: a copy.
func restoreFiles(checkpoint, dir string) error {
	entries, err := os.ReadDir(checkpoint)
	if err != nil {
		return err
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(checkpoint, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
