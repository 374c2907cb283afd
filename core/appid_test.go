package kstreams_test

import (
	"strings"
	"testing"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
)

// TestNewAppRefusesIDsKafkaRefuses: an application id that Kafka would
// refuse in an internal topic's name fails NewApp, naming the id and the
// topic, instead of failing on a real cluster at start-up.
func TestNewAppRefusesIDsKafkaRefuses(t *testing.T) {
	b := kstreams.NewBuilder()
	counts := kstreams.AddStore(b, store.KeyValue("counts", serde.String, serde.Int64, memory.Supplier()))
	src := kstreams.Source(b, "in", []string{"in"}, serde.String, serde.String)
	counted := kstreams.Process(src, "count", func() kstreams.Processor[string, string, string, []byte] { return &idCounter{store: counts} },
		kstreams.WithStores(counts))
	kstreams.Sink(counted, "out", "out", serde.String, serde.Bytes)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	newApp := func(id string, opts ...kstreams.Option) error {
		_, err := kstreams.NewApp(topo, append([]kstreams.Option{kstreams.WithBrokers("127.0.0.1:1"), kstreams.WithApplicationID(id)}, opts...)...)
		return err
	}
	// "-counts-changelog" is 17 characters long: 232 + 17 = 249 is the limit.
	for _, id := range []string{"wordcount", "orders.v2_EU-1", strings.Repeat("a", 232)} {
		if err := newApp(id); err != nil {
			t.Errorf("NewApp with id %q: %v", id, err)
		}
	}
	for id, want := range map[string][]string{
		"my app":                 {`application id "my app"`, `' '`},
		"team/orders":            {`application id "team/orders"`, `'/'`},
		"zählwerk":               {`application id "zählwerk"`, `'ä'`},
		strings.Repeat("a", 233): {`application id "aaaa`, `changelog topic "` + strings.Repeat("a", 233) + `-counts-changelog"`, "250 characters long; Kafka allows at most 249"},
	} {
		err := newApp(id)
		if err == nil {
			t.Errorf("NewApp accepted id %q", id)
			continue
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("NewApp with id %q: %v\nwant it to contain %q", id, err, w)
			}
		}
	}
	if err := newApp("ok", kstreams.WithDeserializationErrors(kstreams.DeadLetterOnError("dead letters"))); err == nil ||
		!strings.Contains(err.Error(), `topic name "dead letters"`) {
		t.Errorf("a dead-letter topic with a space: %v, want an error naming it", err)
	}
	// The test driver refuses the same ids, so unit tests catch them.
	if _, err := kstreamstest.New(topo, kstreamstest.WithApplicationID("my app")); err == nil || !strings.Contains(err.Error(), `"my app"`) {
		t.Errorf("kstreamstest.New with id %q: %v, want an error naming it", "my app", err)
	}
}
