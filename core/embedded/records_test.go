package embedded_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newCluster(t *testing.T, opts ...embedded.Option) *embedded.Cluster {
	t.Helper()
	c, err := embedded.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestProduceAndRead(t *testing.T) {
	c := newCluster(t, embedded.Topic("counts", 4), embedded.Topic("empty", 2))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	at := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
	in := []embedded.Record[string, int64]{
		{Key: "a", Value: 1, Timestamp: at, Headers: []serde.Header{{Key: "h", Value: []byte("v")}}},
		{Key: "b", Value: 2, Timestamp: at},
		{Key: "a", Value: 3}, // stamped at production
	}
	if err := embedded.Produce(ctx, c, "counts", serde.String, serde.Int64, in...); err != nil {
		t.Fatal(err)
	}
	got, err := embedded.Read(ctx, c, "counts", serde.String, serde.Int64)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("read %d records, want 3: %+v", len(got), got)
	}
	var a []embedded.Record[string, int64]
	for i, r := range got {
		if i > 0 && (r.Partition < got[i-1].Partition || r.Partition == got[i-1].Partition && r.Offset <= got[i-1].Offset) {
			t.Errorf("records not ordered by partition and offset: %+v", got)
		}
		if r.Key == "a" {
			a = append(a, r)
		}
	}
	// Equal keys, equal partitions, in production order.
	if len(a) != 2 || a[0].Partition != a[1].Partition || a[0].Value != 1 || a[1].Value != 3 {
		t.Fatalf("records of key a: %+v", a)
	}
	if !a[0].Timestamp.Equal(at) || len(a[0].Headers) != 1 || string(a[0].Headers[0].Value) != "v" {
		t.Errorf("first record of a: timestamp %v, headers %v; want %v and h=v", a[0].Timestamp, a[0].Headers, at)
	}
	if a[1].Timestamp.Before(at) || a[1].Timestamp.IsZero() {
		t.Errorf("a record produced without a timestamp has %v, want the time of production", a[1].Timestamp)
	}

	if got, err := embedded.Read(ctx, c, "empty", serde.Bytes, serde.Bytes); err != nil || len(got) != 0 {
		t.Errorf("Read of an empty topic = %v, %v; want nothing", got, err)
	}
	// Bytes, and a null value.
	if err := embedded.Produce(ctx, c, "empty", serde.Bytes, serde.Bytes, embedded.Record[[]byte, []byte]{Key: []byte("k")}); err != nil {
		t.Fatal(err)
	}
	if got, err := embedded.Read(ctx, c, "empty", serde.Bytes, serde.Bytes); err != nil || len(got) != 1 || got[0].Value != nil || string(got[0].Key) != "k" {
		t.Errorf("Read of a null value = %+v, %v", got, err)
	}

	// A record the serde cannot decode is named.
	if err := embedded.Produce(ctx, c, "empty", serde.String, serde.String, embedded.Record[string, string]{Key: "k", Value: "not an int"}); err != nil {
		t.Fatal(err)
	}
	if _, err := embedded.Read(ctx, c, "empty", serde.String, serde.Int64); err == nil || !strings.Contains(err.Error(), "decoding the value of empty/") {
		t.Errorf("Read with the wrong serde: %v, want an error naming the record", err)
	}
}

func TestReadAtLeastWaits(t *testing.T) {
	c := newCluster(t, embedded.Topic("out", 2))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		recs []embedded.Record[string, string]
		err  error
	}
	done := make(chan result, 1)
	go func() {
		recs, err := embedded.ReadAtLeast(ctx, c, "out", 5, serde.String, serde.String)
		done <- result{recs, err}
	}()
	for i := range 5 {
		if err := embedded.Produce(ctx, c, "out", serde.String, serde.String, embedded.Record[string, string]{Key: string(rune('a' + i)), Value: "v"}); err != nil {
			t.Fatal(err)
		}
	}
	if r := <-done; r.err != nil || len(r.recs) != 5 {
		t.Fatalf("ReadAtLeast(5) = %d records, %v", len(r.recs), r.err)
	}

	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	recs, err := embedded.ReadAtLeast(short, c, "out", 6, serde.String, serde.String)
	if err == nil || !strings.Contains(err.Error(), "read 5 of at least 6 records of out") || len(recs) != 5 {
		t.Errorf("ReadAtLeast(6) of 5 records = %d records, %v; want the 5 and an error saying so", len(recs), err)
	}
}

// TestReadSkipsUncommittedTransactions: a topic written in transactions
// ends with a commit or abort marker, which Read must count as reached,
// and aborted records are not read.
func TestReadSkipsUncommittedTransactions(t *testing.T) {
	c := newCluster(t, embedded.Topic("txn", 1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers()...), kgo.TransactionalID("embedded-test"), kgo.DefaultProduceTopic("txn"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, commit := range []bool{true, false} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		v := "committed"
		if !commit {
			v = "aborted"
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := embedded.Read(ctx, c, "txn", serde.Bytes, serde.String)
	if err != nil || len(got) != 1 || got[0].Value != "committed" {
		t.Fatalf("Read = %+v, %v; want the committed record only", got, err)
	}
}
