package bucket

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Dir returns a Bucket kept in the local directory path (created if
// missing), for tests, examples and single-machine deployments.
//
// Each object is one file, written to a temporary file, synced and renamed
// into place, so it appears whole or not at all and survives a crash once
// Put returned. Conditional writes are atomic among the goroutines of one
// process (every Dir of the same path shares one lock), not across
// processes: two processes must not write one directory.
//
// The first Dir of a path in a process removes the temporary files of
// writes a crashed process left. The files hold a short header (the object's version) before the
// contents. Names are stored escaped, one file per object in path itself;
// Dir refuses a name whose escaped form would exceed 240 bytes.
func Dir(path string) (Bucket, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("bucket directory %s: %w", path, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("bucket directory %s: %w", abs, err)
	}
	dirLocksMu.Lock()
	defer dirLocksMu.Unlock()
	mu := dirLocks[abs]
	if mu == nil {
		// The first Dir of path in this process: temporary files are
		// leftovers of a process that crashed mid-Put.
		if err := removeTemporaries(abs); err != nil {
			return nil, fmt.Errorf("bucket directory %s: removing the temporary files of interrupted writes: %w", abs, err)
		}
		mu = new(sync.Mutex)
		dirLocks[abs] = mu
	}
	return &dirBucket{root: abs, mu: mu}, nil
}

func removeTemporaries(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

var (
	dirLocksMu sync.Mutex
	dirLocks   = map[string]*sync.Mutex{}
)

type dirBucket struct {
	root string
	mu   *sync.Mutex // held while a write checks its condition and commits
}

// The header of every object file: a fixed prefix, the version (32 hex
// digits), a newline.
const (
	dirHeaderPrefix = "kstreams-bucket-object v1 "
	dirHeaderLen    = len(dirHeaderPrefix) + 32 + 1
	maxEscapedLen   = 240
)

// escape maps an object name to a file name: bytes other than ASCII
// letters, digits, '-', '_' and a non-leading '.' become %XX, so the file
// name is flat, portable, and never starts with '.' (temporary files do).
func escape(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' && i > 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func unescape(file string) (string, bool) {
	if strings.HasPrefix(file, ".") {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(file); i++ {
		if file[i] != '%' {
			b.WriteByte(file[i])
			continue
		}
		if i+2 >= len(file) {
			return "", false
		}
		v, err := hex.DecodeString(file[i+1 : i+3])
		if err != nil {
			return "", false
		}
		b.WriteByte(v[0])
		i += 2
	}
	return b.String(), true
}

func (d *dirBucket) errorf(op, name string, err error) error {
	return fmt.Errorf("bucket directory %s: %s %q: %w", d.root, op, name, err)
}

func (d *dirBucket) path(name string) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	e := escape(name)
	if len(e) > maxEscapedLen {
		return "", fmt.Errorf("escaped object name is %d bytes, Dir's limit is %d", len(e), maxEscapedLen)
	}
	return filepath.Join(d.root, e), nil
}

// readHeader reads the version from an object file's header.
func readHeader(f *os.File) (string, error) {
	var h [dirHeaderLen]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return "", fmt.Errorf("reading the object header: %w", err)
	}
	if !strings.HasPrefix(string(h[:]), dirHeaderPrefix) || h[dirHeaderLen-1] != '\n' {
		return "", errors.New("not an object file of a bucket directory (bad header)")
	}
	return string(h[len(dirHeaderPrefix) : dirHeaderLen-1]), nil
}

// open opens an object file and reads its header.
func (d *dirBucket) open(name, p string) (*os.File, Info, error) {
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, Info{}, ErrNotFound
		}
		return nil, Info{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, Info{}, err
	}
	v, err := readHeader(f)
	if err != nil {
		f.Close()
		return nil, Info{}, err
	}
	return f, Info{Name: name, Size: fi.Size() - int64(dirHeaderLen), Version: v, Modified: fi.ModTime()}, nil
}

// Put implements Bucket.
func (d *dirBucket) Put(ctx context.Context, name string, r io.Reader, size int64, cond Cond) (string, error) {
	p, err := d.path(name)
	if err != nil {
		return "", d.errorf("put", name, err)
	}
	if v, ok := cond.MatchVersion(); ok && len(v) != 32 {
		return "", d.errorf("put", name, fmt.Errorf("version %q (%s): %w", v, cond, ErrPreconditionFailed))
	}
	if err := ctx.Err(); err != nil {
		return "", d.errorf("put", name, err)
	}
	var token [16]byte
	rand.Read(token[:])
	version := hex.EncodeToString(token[:])
	tmp, err := os.CreateTemp(d.root, ".tmp-")
	if err != nil {
		return "", d.errorf("put", name, err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.WriteString(tmp, dirHeaderPrefix+version+"\n"); err != nil {
		return "", d.errorf("put", name, err)
	}
	n, err := io.Copy(tmp, io.LimitReader(r, size+1))
	if err != nil {
		return "", d.errorf("put", name, fmt.Errorf("writing the contents: %w", err))
	}
	if n != size {
		return "", d.errorf("put", name, fmt.Errorf("the reader held %d bytes or more, the size given is %d", n, size))
	}
	if err := tmp.Sync(); err != nil {
		return "", d.errorf("put", name, err)
	}
	if err := tmp.Close(); err != nil {
		return "", d.errorf("put", name, err)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if !cond.IsZero() {
		f, info, err := d.open(name, p)
		switch {
		case err == nil:
			f.Close()
		case errors.Is(err, ErrNotFound):
		default:
			return "", d.errorf("put", name, fmt.Errorf("checking the condition: %w", err))
		}
		exists := err == nil
		if v, ok := cond.MatchVersion(); cond.IsAbsent() && exists || ok && (!exists || info.Version != v) {
			return "", d.errorf("put", name, fmt.Errorf("%s: %w", cond, ErrPreconditionFailed))
		}
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", d.errorf("put", name, err)
	}
	committed = true
	if err := syncDir(d.root); err != nil {
		return "", d.errorf("put", name, err)
	}
	return version, nil
}

// Get implements Bucket. The reader reads the version Get found even if the
// object is replaced meanwhile.
func (d *dirBucket) Get(ctx context.Context, name string) (io.ReadCloser, Info, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, Info{}, d.errorf("get", name, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, Info{}, d.errorf("get", name, err)
	}
	f, info, err := d.open(name, p)
	if err != nil {
		return nil, Info{}, d.errorf("get", name, err)
	}
	return f, info, nil
}

// Stat implements Bucket.
func (d *dirBucket) Stat(ctx context.Context, name string) (Info, error) {
	p, err := d.path(name)
	if err != nil {
		return Info{}, d.errorf("stat", name, err)
	}
	if err := ctx.Err(); err != nil {
		return Info{}, d.errorf("stat", name, err)
	}
	f, info, err := d.open(name, p)
	if err != nil {
		return Info{}, d.errorf("stat", name, err)
	}
	f.Close()
	return info, nil
}

// List implements Bucket. It reads the directory once, at the first step.
func (d *dirBucket) List(ctx context.Context, prefix string) iter.Seq2[Info, error] {
	return func(yield func(Info, error) bool) {
		entries, err := os.ReadDir(d.root)
		if err != nil {
			yield(Info{}, d.errorf("list", prefix, err))
			return
		}
		var names []string
		for _, e := range entries {
			if name, ok := unescape(e.Name()); ok && e.Type().IsRegular() && strings.HasPrefix(name, prefix) {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		for _, name := range names {
			if err := ctx.Err(); err != nil {
				yield(Info{}, d.errorf("list", prefix, err))
				return
			}
			f, info, err := d.open(name, filepath.Join(d.root, escape(name)))
			if errors.Is(err, ErrNotFound) {
				continue // deleted since the directory was read
			}
			if err != nil {
				yield(Info{}, d.errorf("list", prefix, fmt.Errorf("object %q: %w", name, err)))
				return
			}
			f.Close()
			if !yield(info, nil) {
				return
			}
		}
	}
}

// Delete implements Bucket.
func (d *dirBucket) Delete(ctx context.Context, name string) error {
	p, err := d.path(name)
	if err != nil {
		return d.errorf("delete", name, err)
	}
	if err := ctx.Err(); err != nil {
		return d.errorf("delete", name, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return d.errorf("delete", name, err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
