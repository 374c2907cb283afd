package kstreams_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/twmb/franz-go/pkg/kgo"
)

// remoteServer stands in for a remote store service (Redis, Bigtable, a
// bucket): it outlives the app instances, keeps each store instance's
// data, stored changelog offset and owner epoch, and applies a backend's
// buffered writes only at a flush, in one step with the epoch check, as
// store.OffsetKeeper and store.ErrFenced describe.
type remoteServer struct {
	mu   sync.Mutex
	inst map[string]*remoteInstance // by task
}

type remoteInstance struct {
	epoch   int64
	data    map[string][]byte
	offset  int64   // -1: none
	flushAt []int64 // offsets of successful FlushAt calls (-2: Flush)
	fenced  int     // flushes refused
}

func newRemoteServer() *remoteServer { return &remoteServer{inst: map[string]*remoteInstance{}} }

func (s *remoteServer) get(task string) *remoteInstance {
	in := s.inst[task]
	if in == nil {
		in = &remoteInstance{data: map[string][]byte{}, offset: -1}
		s.inst[task] = in
	}
	return in
}

// claim raises task's owner epoch as a newer owner's open does.
func (s *remoteServer) claim(task string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.get(task).epoch++
}

func (s *remoteServer) snapshot(task string) (data map[string]string, offset int64, flushes []int64, fenced int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.get(task)
	data = map[string]string{}
	for k, v := range in.data {
		data[k] = string(v)
	}
	return data, in.offset, append([]int64(nil), in.flushAt...), in.fenced
}

func (s *remoteServer) supplier() store.Supplier {
	return func(bctx store.BackendContext) (store.Backend, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		in := s.get(bctx.Task)
		in.epoch++
		return &remoteBackend{srv: s, in: in, epoch: in.epoch, overlay: map[string]*[]byte{}}, nil
	}
}

// remoteBackend buffers writes until a flush; closing discards what is not
// flushed (as a crash would).
type remoteBackend struct {
	srv     *remoteServer
	in      *remoteInstance
	epoch   int64
	mu      sync.Mutex
	overlay map[string]*[]byte // nil value: deleted
}

func (b *remoteBackend) Get(key []byte) ([]byte, bool, error) {
	b.mu.Lock()
	if v, ok := b.overlay[string(key)]; ok {
		b.mu.Unlock()
		if v == nil {
			return nil, false, nil
		}
		return *v, true, nil
	}
	b.mu.Unlock()
	b.srv.mu.Lock()
	defer b.srv.mu.Unlock()
	v, ok := b.in.data[string(key)]
	return v, ok, nil
}

func (b *remoteBackend) Set(key, value []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	v := bytes.Clone(value)
	if v == nil {
		v = []byte{}
	}
	b.overlay[string(key)] = &v
	return nil
}

func (b *remoteBackend) Delete(key []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.overlay[string(key)] = nil
	return nil
}

// DeleteRange is applied at once (the runtime clears a store with it).
func (b *remoteBackend) DeleteRange(lo, hi []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.srv.mu.Lock()
	defer b.srv.mu.Unlock()
	if b.in.epoch != b.epoch {
		return store.ErrFenced
	}
	in := func(k string) bool { return (lo == nil || k >= string(lo)) && (hi == nil || k < string(hi)) }
	for k := range b.in.data {
		if in(k) {
			delete(b.in.data, k)
		}
	}
	for k := range b.overlay {
		if in(k) {
			delete(b.overlay, k)
		}
	}
	return nil
}

func (b *remoteBackend) Range(lo, hi []byte) iter.Seq2[store.Entry, error] {
	return func(yield func(store.Entry, error) bool) {
		yield(store.Entry{}, errors.New("remoteBackend: Range not supported by this test backend"))
	}
}

func (b *remoteBackend) Write(batch *store.Batch) error {
	for _, op := range batch.Ops() {
		var err error
		switch op.Kind {
		case store.OpSet:
			err = b.Set(op.Key, op.Value)
		case store.OpDelete:
			err = b.Delete(op.Key)
		case store.OpDeleteRange:
			err = b.DeleteRange(op.Key, op.End)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *remoteBackend) Flush() error { return b.FlushAt(-2) }

func (b *remoteBackend) FlushAt(offset int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.srv.mu.Lock()
	defer b.srv.mu.Unlock()
	if b.in.epoch != b.epoch {
		b.in.fenced++
		return fmt.Errorf("remote store: owner epoch %d, stored %d: %w", b.epoch, b.in.epoch, store.ErrFenced)
	}
	for k, v := range b.overlay {
		if v == nil {
			delete(b.in.data, k)
		} else {
			b.in.data[k] = *v
		}
	}
	clear(b.overlay)
	if offset >= -1 {
		b.in.offset = offset
	}
	b.in.flushAt = append(b.in.flushAt, offset)
	return nil
}

func (b *remoteBackend) StoredOffset() (int64, bool, error) {
	b.srv.mu.Lock()
	defer b.srv.mu.Unlock()
	return b.in.offset, b.in.offset >= 0, nil
}

func (b *remoteBackend) Close() error { return nil }

// countsOf decodes the int64 counts of a counts store's data.
func countsOf(t *testing.T, data map[string]string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for k, v := range data {
		n, err := serde.StoreForm(serde.Int64).Deserialize("counts", nil, []byte(v))
		if err != nil {
			t.Fatalf("count of %q: %v", k, err)
		}
		out[k] = n
	}
	return out
}

// produceKeys sends n records, ids prefix0..prefix(n-1), over keys a..e.
func produceKeys(t *testing.T, brokers []string, in, prefix string, n int) {
	t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: in, Key: []byte{'a' + byte(i%5)}, Value: fmt.Appendf(nil, "%s%d", prefix, i)}
	}
	produce(t, newClient(t, brokers), recs...)
}

// waitOutputs waits until every id prefix0..prefix(n-1) is in results.
func waitOutputs(t *testing.T, results *collector, a *runningApp, prefix string, n int) map[string]countOutput {
	t.Helper()
	got := map[string]countOutput{}
	waitFor(t, 30*time.Second, fmt.Sprintf("outputs of %s0..%s%d", prefix, prefix, n-1), func() bool {
		select {
		case err := <-a.err:
			a.err <- err
			t.Fatalf("app stopped: %v", err)
		default:
		}
		for _, r := range results.snapshot() {
			var o countOutput
			if json.Unmarshal(r.Value, &o) == nil && strings.HasPrefix(o.ID, prefix) {
				got[o.ID] = o
			}
		}
		return len(got) >= n
	})
	return got
}

// TestOffsetKeeperStore: a store whose backend keeps its changelog offset
// (store.OffsetKeeper) is flushed with the offset after its task's last
// acknowledged changelog write before the offsets are committed, and a new
// instance restores only the changelog after that offset.
func TestOffsetKeeperStore(t *testing.T) {
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	srv := newRemoteServer()
	topo := countingTopology(t, in, out, srv.supplier())
	results := collect(t, brokers, out)

	a := startApp(t, topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithStateDir(t.TempDir()))
	produceKeys(t, brokers, in, "r", 50)
	waitOutputs(t, results, a, "r", 50)
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	data, offset, flushes, _ := srv.snapshot("0_0")
	// 50 changelog records, one per input record: the stored offset is the
	// changelog's end, and the data holds every count.
	if offset != 50 || len(flushes) == 0 || flushes[len(flushes)-1] != 50 {
		t.Fatalf("stored offset %d, FlushAt calls %v; want the last at 50", offset, flushes)
	}
	if c := countsOf(t, data); fmt.Sprint(c) != "map[a:10 b:10 c:10 d:10 e:10]" {
		t.Fatalf("flushed counts %v; want 10 per key", c)
	}
	if got := committedOffset(t, brokers, appID, in); got != 50 {
		t.Fatalf("committed offset %d, want 50", got)
	}

	var progress []kstreams.RestoreProgress
	var mu sync.Mutex
	b := startApp(t, topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithStateDir(t.TempDir()),
		kstreams.WithRestoreListener(func(p kstreams.RestoreProgress) { mu.Lock(); progress = append(progress, p); mu.Unlock() }))
	if n := countAfter(t, brokers, in, out, "a", b); n != 11 {
		t.Errorf("count of a after the restart = %d, want 11", n)
	}
	if err := b.stop(t); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(progress) == 0 || progress[0].Start != 50 {
		t.Errorf("restore progress %+v; want the restore to start at the stored offset 50", progress)
	}
}

// TestStoreWithoutChangelogFlushedBeforeCommit: a store without changelog
// holds the only copy of its state; its buffered writes must be flushed
// before the offsets of the records that made them are committed, or a
// restart loses them.
func TestStoreWithoutChangelogFlushedBeforeCommit(t *testing.T) {
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	srv := newRemoteServer()
	sup := srv.supplier()
	unlogged := func(bctx store.BackendContext) (store.Backend, error) {
		b, err := sup(bctx)
		return withoutKeeper{b}, err
	}
	topo := countingTopologyOpts(t, in, out, unlogged, store.WithoutChangelog())
	results := collect(t, brokers, out)
	opts := []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID), kstreams.WithCommitInterval(100 * time.Millisecond)}

	a := startApp(t, topo, opts...)
	produceKeys(t, brokers, in, "r", 50)
	waitOutputs(t, results, a, "r", 50)
	waitFor(t, 30*time.Second, "offset 50 committed", func() bool { return committedOffset(t, brokers, appID, in) == 50 })
	// Whatever is committed must be in the store already: kill the app
	// (no graceful flush), then look.
	a.app.Kill()
	a.wait(t)
	data, _, flushes, _ := srv.snapshot("0_0")
	if c := countsOf(t, data); fmt.Sprint(c) != "map[a:10 b:10 c:10 d:10 e:10]" {
		t.Fatalf("after the commit of offset 50, the store holds %v (flushes %v); want 10 per key", c, flushes)
	}
	b := startApp(t, topo, opts...)
	if n := countAfter(t, brokers, in, out, "a", b); n != 11 {
		t.Errorf("count of a after the restart = %d, want 11", n)
	}
}

// withoutKeeper hides store.OffsetKeeper.
type withoutKeeper struct{ store.Backend }

// TestStoreFencedByNewerOwner: once a newer owner opened the task's store
// (its flush is refused with store.ErrFenced), the task writes and commits
// nothing more, and the instance stops with an error naming the store if
// the group keeps assigning it the task.
func TestStoreFencedByNewerOwner(t *testing.T) {
	t.Parallel()
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	srv := newRemoteServer()
	topo := countingTopology(t, in, out, srv.supplier())
	results := collect(t, brokers, out)
	a := startApp(t, topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
		kstreams.WithCommitInterval(100*time.Millisecond), kstreams.WithSessionTimeout(6*time.Second))
	produceKeys(t, brokers, in, "r", 20)
	waitOutputs(t, results, a, "r", 20)
	waitFor(t, 30*time.Second, "offset 20 committed", func() bool { return committedOffset(t, brokers, appID, in) == 20 })

	srv.claim("0_0") // another owner opened the store
	produceKeys(t, brokers, in, "s", 20)
	var err error
	select {
	case err = <-a.err:
		a.err <- err
	case <-time.After(45 * time.Second):
		t.Fatal("the app did not stop while the group kept assigning it a task whose store has a newer owner")
	}
	if err == nil || !strings.Contains(err.Error(), "opened by a newer owner") || !errors.Is(err, store.ErrFenced) {
		t.Fatalf("Run returned %v; want the store fenced error", err)
	}
	if got := committedOffset(t, brokers, appID, in); got != 20 {
		// The commit round whose flush was refused commits nothing of
		// the task.
		t.Errorf("committed offset %d; want 20, where the store was fenced", got)
	}
	_, _, _, fenced := srv.snapshot("0_0")
	if fenced == 0 {
		t.Error("no flush was refused: the test did not exercise the fence")
	}
}
