package storetest_test

import (
	"bytes"
	"fmt"
	"iter"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/storetest"
)

// server is a tiny durable "remote" store: instances keyed by task, each
// with an owner epoch raised by every open, as a remote backend keeps them.
type server struct {
	mu        sync.Mutex
	instances map[string]*instance
}

type instance struct {
	epoch  int64
	data   map[string][]byte
	offset int64 // -1: none
}

// durable writes through to the server, refusing writes once a newer owner
// opened the instance: the simplest backend RunDurable accepts.
type durable struct {
	srv    *server
	in     *instance
	epoch  int64
	closed bool
}

func (s *server) open(ctx store.BackendContext) *durable {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.instances[ctx.Task]
	if in == nil {
		in = &instance{data: map[string][]byte{}, offset: -1}
		s.instances[ctx.Task] = in
	}
	in.epoch++
	return &durable{srv: s, in: in, epoch: in.epoch}
}

func (d *durable) check() error {
	if d.closed {
		return store.ErrClosed
	}
	if d.in.epoch != d.epoch {
		return fmt.Errorf("owner epoch %d, instance at %d: %w", d.epoch, d.in.epoch, store.ErrFenced)
	}
	return nil
}

func (d *durable) Get(key []byte) ([]byte, bool, error) {
	d.srv.mu.Lock()
	defer d.srv.mu.Unlock()
	if d.closed {
		return nil, false, store.ErrClosed
	}
	v, ok := d.in.data[string(key)]
	return v, ok, nil
}

func (d *durable) Set(key, value []byte) error {
	var b store.Batch
	b.Set(key, value)
	return d.Write(&b)
}

func (d *durable) Delete(key []byte) error {
	var b store.Batch
	b.Delete(key)
	return d.Write(&b)
}

func (d *durable) DeleteRange(lo, hi []byte) error {
	var b store.Batch
	b.DeleteRange(lo, hi)
	return d.Write(&b)
}

func (d *durable) Write(b *store.Batch) error {
	d.srv.mu.Lock()
	defer d.srv.mu.Unlock()
	if err := d.check(); err != nil {
		return err
	}
	for _, op := range b.Ops() {
		switch op.Kind {
		case store.OpSet:
			d.in.data[string(op.Key)] = bytes.Clone(op.Value)
		case store.OpDelete:
			delete(d.in.data, string(op.Key))
		case store.OpDeleteRange:
			for k := range d.in.data {
				if (op.Key == nil || k >= string(op.Key)) && (op.End == nil || k < string(op.End)) {
					delete(d.in.data, k)
				}
			}
		}
	}
	return nil
}

func (d *durable) Range(lo, hi []byte) iter.Seq2[store.Entry, error] {
	return func(yield func(store.Entry, error) bool) {
		d.srv.mu.Lock()
		if d.closed {
			d.srv.mu.Unlock()
			yield(store.Entry{}, store.ErrClosed)
			return
		}
		var es []store.Entry
		for k, v := range d.in.data {
			if (lo == nil || k >= string(lo)) && (hi == nil || k < string(hi)) {
				es = append(es, store.Entry{Key: []byte(k), Value: v})
			}
		}
		d.srv.mu.Unlock()
		slices.SortFunc(es, func(a, b store.Entry) int { return bytes.Compare(a.Key, b.Key) })
		for _, e := range es {
			if !yield(e, nil) {
				return
			}
		}
	}
}

func (d *durable) Flush() error { return d.FlushAt(-2) }

func (d *durable) FlushAt(offset int64) error {
	d.srv.mu.Lock()
	defer d.srv.mu.Unlock()
	if err := d.check(); err != nil {
		return err
	}
	if offset >= -1 {
		d.in.offset = offset
	}
	return nil
}

func (d *durable) StoredOffset() (int64, bool, error) {
	d.srv.mu.Lock()
	defer d.srv.mu.Unlock()
	if d.closed {
		return 0, false, store.ErrClosed
	}
	return d.in.offset, d.in.offset >= 0, nil
}

func (d *durable) Close() error {
	d.srv.mu.Lock()
	defer d.srv.mu.Unlock()
	if d.closed {
		return store.ErrClosed
	}
	d.closed = true
	return nil
}

func TestRunDurable(t *testing.T) {
	srv := &server{instances: map[string]*instance{}}
	storetest.RunDurable(t, func(t *testing.T, ctx store.BackendContext) store.Backend {
		return srv.open(ctx)
	})
}

// unfenced ignores owner epochs: RunDurable must reject it.
type unfenced struct{ *durable }

func (u unfenced) Write(b *store.Batch) error {
	u.durable.epoch = u.durable.in.epoch
	return u.durable.Write(b)
}

func (u unfenced) FlushAt(offset int64) error {
	u.durable.epoch = u.durable.in.epoch
	return u.durable.FlushAt(offset)
}

// TestRunDurableRejectsUnfenced runs the suite, in a child process, against
// a backend that lets a stale owner write: the suite must fail it.
func TestRunDurableRejectsUnfenced(t *testing.T) {
	if os.Getenv("STORETEST_UNFENCED") == "1" {
		srv := &server{instances: map[string]*instance{}}
		storetest.RunDurable(t, func(t *testing.T, ctx store.BackendContext) store.Backend {
			return unfenced{srv.open(ctx)}
		})
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunDurableRejectsUnfenced$", "-test.v")
	cmd.Env = append(os.Environ(), "STORETEST_UNFENCED=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the suite passed a backend without fencing:\n%s", out)
	}
	for _, want := range []string{"--- FAIL: TestRunDurableRejectsUnfenced/StaleOwnerIsFenced", "--- FAIL: TestRunDurableRejectsUnfenced/StaleOwnerBatchIsFenced", "want store.ErrFenced"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "--- FAIL: TestRunDurableRejectsUnfenced/FlushAtSurvivesReopen") {
		t.Errorf("a check unrelated to fencing failed:\n%s", out)
	}
}
