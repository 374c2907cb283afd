package kstreams_test

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strconv"
	"strings"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

func passThrough(t testing.TB, in, out string, opts ...kstreams.SourceOption[string, string]) *kstreams.Topology {
	t.Helper()
	b := kstreams.NewBuilder()
	kstreams.Sink(kstreams.Source(b, "in", []string{in}, serde.String, serde.String, opts...), "out", out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// produceAtMillis writes one record to partition 0 of topic with a
// timestamp of ms milliseconds since 1970, as a Java producer can:
// franz-go's producer cannot write timestamps past 2262 (it takes the
// milliseconds from UnixNano, which overflows), so the record batch is
// built here and sent as a raw Produce request (v12, which names topics).
func produceAtMillis(t testing.TB, brokers []string, topic string, key, value []byte, ms int64) {
	t.Helper()
	rec := kmsg.Record{Key: key, Value: value}
	body := rec.AppendTo(nil)[1:] // without the length (0, one byte)
	batch := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, FirstTimestamp: ms, MaxTimestamp: ms,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1,
		Records: append(binary.AppendVarint(nil, int64(len(body))), body...)}
	raw := batch.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))                                          // length of what follows
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli))) // from the attributes on
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = raw
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, newClient(t, brokers, kgo.MaxVersions(kversion.V3_9_0())))
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("producing a record at %d ms: %v", ms, err)
	}
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestTimestampPast2262 runs records stamped 1 January 2300 through an app
// on the embedded cluster. franz-go's consumer turns that timestamp into a
// date in 1715; kstreams must not process the record at that date. It
// fails it at deserialization, naming the record and its real time: the
// default policy stops the app; a dead-letter policy keeps the record, with
// its exact timestamp in a header, and the records around it are
// processed.
func TestTimestampPast2262(t *testing.T) {
	y2300 := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := strconv.FormatInt(y2300.UnixMilli(), 10)
	// A recent time: Kafka's time retention (7 days by default) deletes
	// records stamped earlier, even in the active segment.
	now := time.Now().UTC().Truncate(time.Millisecond)
	setup := func(t *testing.T) (brokers []string, in, out, appID string) {
		brokers = testBrokers(t)
		in, out, appID = uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
		createTopics(t, brokers, 1, out)
		// Kafka 4 refuses timestamps more than an hour ahead by default
		// (message.timestamp.after.max.ms): the input topic allows any.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := kadm.NewClient(newClient(t, brokers)).CreateTopic(ctx, 1, -1,
			map[string]*string{"message.timestamp.after.max.ms": new("9223372036854775807")}, in)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatalf("creating %s: %v", in, err)
		}
		cl := newClient(t, brokers)
		produce(t, cl, &kgo.Record{Topic: in, Key: []byte("a"), Value: []byte("before"), Timestamp: now})
		produceAtMillis(t, brokers, in, []byte("b"), []byte("2300"), y2300.UnixMilli())
		produce(t, cl, &kgo.Record{Topic: in, Key: []byte("c"), Value: []byte("after"), Timestamp: now})
		return brokers, in, out, appID
	}

	t.Run("fail", func(t *testing.T) {
		brokers, in, out, appID := setup(t)
		app, err := kstreams.NewApp(passThrough(t, in, out), kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		err = app.Run(ctx)
		var re *kstreams.RecordError
		if !errors.As(err, &re) || re.Topic != in || re.Partition != 0 || re.Offset != 1 || re.Stage != kstreams.StageDeserialize {
			t.Fatalf("Run = %v, want a deserialization RecordError for %s/0@1", err, in)
		}
		for _, want := range []string{"2300-01-01T00:00:00Z", ms + " ms", "outside the range"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Run's error %q lacks %q", err, want)
			}
		}
		if got := committedOffsets(t, brokers, appID, in); got[0] > 1 {
			t.Errorf("committed %v, past the failed record at offset 1", got)
		}
	})

	t.Run("dead letter", func(t *testing.T) {
		brokers, in, out, appID := setup(t)
		dlq := uniqueName(t, "dlq")
		ra := startApp(t, passThrough(t, in, out), kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
			kstreams.WithDeserializationErrors(kstreams.DeadLetterOnError(dlq)))
		waitCommitted(t, brokers, appID, in, 60*time.Second)
		if err := ra.stop(t); err != nil {
			t.Fatal(err)
		}
		outs := readTopic(t, brokers, out)
		if len(outs) != 2 || string(outs[0].Value) != "before" || string(outs[1].Value) != "after" || !outs[0].Timestamp.Equal(now) {
			t.Fatalf("outputs %v, want the records before and after the one of 2300, at %v", outs, now)
		}
		dead := readTopic(t, brokers, dlq)
		if len(dead) != 1 {
			t.Fatalf("%d dead letters, want 1", len(dead))
		}
		d := dead[0]
		if string(d.Value) != "2300" || header(d, "kstreams.source.offset") != "1" || header(d, "kstreams.error.stage") != "deserialize" {
			t.Errorf("dead letter %q with headers %v, want the record of offset 1 failed at deserialization", d.Value, d.Headers)
		}
		if got := header(d, "kstreams.source.timestamp"); got != ms {
			t.Errorf("dead letter's source timestamp header = %s, want %s (2300-01-01)", got, ms)
		}
		// The dead letter's own timestamp cannot be 2300: franz-go's producer
		// cannot write it (see produceAtMillis). The header above keeps it.
		if msg := header(d, "kstreams.error.message"); !strings.Contains(msg, "2300-01-01T00:00:00Z") {
			t.Errorf("dead letter's error message %q does not name the time", msg)
		}
	})
}

// TestEventTimeOutOfRangeInDriver: the test driver and timestamp
// extractors are held to the same range.
func TestEventTimeOutOfRangeInDriver(t *testing.T) {
	y2300 := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	d, err := kstreamstest.New(passThrough(t, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := kstreamstest.Input(d, "in", serde.String, serde.String)
	var re *kstreams.RecordError
	if err := in.PipeAt("k", "v", y2300); !errors.As(err, &re) || re.Stage != kstreams.StageDeserialize || !strings.Contains(err.Error(), "2300-01-01") {
		t.Errorf("piping a record of 2300: %v, want a deserialization error naming its time", err)
	}
	if err := in.PipeAt("k", "v", time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Errorf("piping a record of 2262: %v", err)
	}

	// A processor may set any timestamp; one franz-go cannot write fails the
	// output.
	b := kstreams.NewBuilder()
	future := kstreams.Map(kstreams.Source(b, "in", []string{"in"}, serde.String, serde.String), "future",
		func(r kstreams.Record[string, string]) (kstreams.Record[string, string], error) {
			r.Timestamp = y2300
			return r, nil
		})
	kstreams.Sink(future, "out", "out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d3, err := kstreamstest.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d3.Close()
	if err := kstreamstest.Input(d3, "in", serde.String, serde.String).Pipe("k", "v"); !errors.As(err, &re) ||
		re.Stage != kstreams.StageProcess || !strings.Contains(err.Error(), "output for topic out: record timestamp 2300-01-01T00:00:00Z") {
		t.Errorf("an output stamped 2300: %v, want a processing error naming the sink's topic and the time", err)
	}

	extracted := passThrough(t, "in", "out", kstreams.WithTimestampExtractor(func(r kstreams.Record[string, string]) (time.Time, error) {
		return time.Parse(time.RFC3339, r.Value)
	}))
	d2, err := kstreamstest.New(extracted)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	in2 := kstreamstest.Input(d2, "in", serde.String, serde.String)
	if err := in2.Pipe("k", "0001-01-01T00:00:00Z"); !errors.As(err, &re) || !strings.Contains(err.Error(), "timestamp extractor") {
		t.Errorf("an extracted time of year 1: %v, want a deserialization error from the extractor", err)
	}
}
