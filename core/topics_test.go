package kstreams_test

import (
	"context"
	"strings"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/twmb/franz-go/pkg/kadm"
)

// TestStartChecksEveryTopicBeforeCreatingAny: a start that fails because
// of one topic (a changelog with the wrong partition count, a missing
// source) creates none of the internal topics the application would
// create: repartition, the other changelogs, dead letters.
func TestStartChecksEveryTopicBeforeCreatingAny(t *testing.T) {
	for _, tc := range []struct {
		name string
		prep func(t *testing.T, brokers []string, in, out, appID string) // makes the start fail
		want string                                                      // in Run's error
	}{
		{"changelog with the wrong partition count", func(t *testing.T, brokers []string, in, out, appID string) {
			createTopics(t, brokers, 2, in, out)
			createTopics(t, brokers, 3, appID+"-b-changelog")
		}, `changelog topic "%app-b-changelog" has 3 partitions but its store's sources have 2`},
		{"missing source topic", func(t *testing.T, brokers []string, in, out, appID string) {
			createTopics(t, brokers, 2, out)
		}, `topic "%in" does not exist`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			brokers := testBrokers(t)
			in, out, rep, dlq, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "rep"), uniqueName(t, "dlq"), uniqueName(t, "app")
			tc.prep(t, brokers, in, out, appID)
			b := kstreams.NewBuilder()
			a := kstreams.AddStore(b, store.KeyValue("a", serde.String, serde.String, memory.Supplier()))
			bStore := kstreams.AddStore(b, store.KeyValue("b", serde.String, serde.String, memory.Supplier()))
			pass := func(ctx context.Context, pc kstreams.ProcessorContext[string, string], r kstreams.Record[string, string]) error {
				return pc.Forward(ctx, r)
			}
			src := kstreams.Source(b, "in", []string{in}, serde.String, serde.String)
			first := kstreams.Func(src, "first", pass, kstreams.WithStores(a))
			second := kstreams.Func(kstreams.Through(first, "rep", rep, 2, serde.String, serde.String), "second", pass, kstreams.WithStores(bStore))
			kstreams.Sink(second, "out", out, serde.String, serde.String)
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			app, err := kstreams.NewApp(topo, kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
				kstreams.WithDeserializationErrors(kstreams.DeadLetterOnError(dlq)))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			err = app.Run(ctx)
			want := strings.NewReplacer("%app", appID, "%in", in).Replace(tc.want)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Run = %v, want an error containing %q", err, want)
			}
			td, err := kadm.NewClient(newClient(t, brokers)).ListTopics(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, topic := range []string{rep, appID + "-a-changelog", dlq} {
				if td.Has(topic) {
					t.Errorf("the failed start created %s", topic)
				}
			}
		})
	}
}
