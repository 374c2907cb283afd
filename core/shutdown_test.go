package kstreams_test

import (
	"bytes"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/twmb/franz-go/pkg/kgo"
)

// syncBuffer is a bytes.Buffer safe for concurrent writes (a log sink).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestShutdownIsBoundedWithAStuckProcessor: a processor that ignores its
// context and never returns does not hold up Run's shutdown beyond
// ShutdownBudget (plus leaving the group); it is logged, and the offset of
// its record is not committed, while the records completed are.
func TestShutdownIsBoundedWithAStuckProcessor(t *testing.T) {
	eachMode(t, testShutdownBounded)
}

func testShutdownBounded(t *testing.T, txn bool) {
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	bl := newBlocker()
	defer close(bl.release) // after Run returned: the stuck processor ends with the test
	var logs syncBuffer
	opts := append(modeOptions(txn), kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
		kstreams.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	a := startApp(t, fencingTopology(t, in, out, "A", bl, 0), opts...)
	// Five records of key k0 complete, then a record of key k1 blocks for
	// good; records after it on k1 wait behind it.
	var recs []*kgo.Record
	for i := range 5 {
		recs = append(recs, &kgo.Record{Topic: in, Key: []byte("k0"), Value: []byte("r" + string(rune('0'+i)))})
	}
	recs = append(recs, &kgo.Record{Topic: in, Key: []byte("k1"), Value: []byte("block")},
		&kgo.Record{Topic: in, Key: []byte("k1"), Value: []byte("after")})
	produce(t, newClient(t, brokers), recs...)
	results := collectMode(t, brokers, out, txn)
	waitFor(t, 30*time.Second, "the five records processed and the stuck one running", func() bool {
		// With transactions nothing is visible yet: a transaction cannot
		// commit while a processor call runs (it could still produce).
		return bl.blocked.Load() == 1 && a.app.Stats().Processed >= 5 && (txn || len(results.snapshot()) >= 5)
	})

	start := time.Now()
	a.cancel()
	var err error
	select {
	case err = <-a.err:
		a.err <- err
	case <-time.After(kstreams.ShutdownBudget + 30*time.Second):
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("Run did not return %v after its context was canceled (budget %v); logs:\n%s\ngoroutines:\n%s", time.Since(start), kstreams.ShutdownBudget, logs.String(), buf[:n])
	}
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Run returned %v", err)
	}
	// Leaving the group is outside the budget; a few seconds cover it.
	if took > kstreams.ShutdownBudget+5*time.Second {
		t.Errorf("shutdown took %v; the budget is %v", took, kstreams.ShutdownBudget)
	}
	if !strings.Contains(logs.String(), "ignores its context") {
		t.Errorf("the stuck processor was not logged; logs:\n%s", logs.String())
	}
	// The stuck record (offset 5) and the one behind it are not committed;
	// the five before it are, unless with transactions: the last one could
	// not commit (the processor still runs), so it aborted.
	switch got := committedOffset(t, brokers, appID, in); {
	case !txn && got != 5:
		t.Errorf("committed offset %d; want 5 (the stuck record's); logs:\n%s", got, logs.String())
	case txn && got >= 5:
		t.Errorf("committed offset %d; want nothing committed (the transaction aborted)", got)
	}
	t.Logf("shutdown took %v", took)
}
