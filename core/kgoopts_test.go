package kstreams_test

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

func passThroughTopology(t *testing.T) *kstreams.Topology {
	t.Helper()
	b := kstreams.NewBuilder()
	kstreams.Sink(kstreams.Source(b, "in", []string{"in"}, serde.String, serde.String), "out", "out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// TestWithKgoOptionsRefusesWhatBreaksKstreams: every franz-go option that
// would fight the runtime (its group, what it reads, where and how it
// writes) is a NewApp error naming the option; the others are accepted.
func TestWithKgoOptionsRefusesWhatBreaksKstreams(t *testing.T) {
	topo := passThroughTopology(t)
	newApp := func(opts ...kgo.Opt) error {
		_, err := kstreams.NewApp(topo, kstreams.WithApplicationID("kgo-opts"), kstreams.WithBrokers("127.0.0.1:1"),
			kstreams.WithKgoOptions(opts...))
		return err
	}
	refused := map[string]kgo.Opt{
		// The partitioner would send changelog records to other partitions
		// than their task's.
		"RecordPartitioner":                  kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		"RackAwarePartitioning":              kgo.RackAwarePartitioning(),
		"DefaultProduceTopicAlways":          kgo.DefaultProduceTopicAlways(),
		"TransactionalID":                    kgo.TransactionalID("x"),
		"TransactionTimeout":                 kgo.TransactionTimeout(time.Minute),
		"DisableIdempotentWrite":             kgo.DisableIdempotentWrite(),
		"RequiredAcks":                       kgo.RequiredAcks(kgo.LeaderAck()),
		"ManualFlushing":                     kgo.ManualFlushing(),
		"AllowIdempotentProduceCancellation": kgo.AllowIdempotentProduceCancellation(),
		"ConsumeTopics":                      kgo.ConsumeTopics("other"),
		"ConsumeRegex":                       kgo.ConsumeRegex(),
		"ConsumeExcludeTopics":               kgo.ConsumeExcludeTopics("x"),
		"ConsumePartitions":                  kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"in": {0: kgo.NewOffset()}}),
		"ConsumeResetOffset":                 kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		"ConsumeStartOffset":                 kgo.ConsumeStartOffset(kgo.NewOffset().AtEnd()),
		"FetchIsolationLevel":                kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		"KeepControlRecords":                 kgo.KeepControlRecords(),
		// Group options.
		"ConsumerGroup":        kgo.ConsumerGroup("other"),
		"SessionTimeout":       kgo.SessionTimeout(10 * time.Second),
		"RebalanceTimeout":     kgo.RebalanceTimeout(10 * time.Second),
		"Balancers":            kgo.Balancers(kgo.RoundRobinBalancer()),
		"DisableAutoCommit":    kgo.DisableAutoCommit(),
		"AutoCommitInterval":   kgo.AutoCommitInterval(time.Second),
		"AutoCommitMarks":      kgo.AutoCommitMarks(),
		"BlockRebalanceOnPoll": kgo.BlockRebalanceOnPoll(),
		"InstanceID":           kgo.InstanceID("x"),
		"OnPartitionsRevoked":  kgo.OnPartitionsRevoked(func(context.Context, *kgo.Client, map[string][]int32) {}),
		"OnPartitionsLost":     kgo.OnPartitionsLost(func(context.Context, *kgo.Client, map[string][]int32) {}),
		"GroupProtocol":        kgo.GroupProtocol("consumer"),
	}
	for name, o := range refused {
		// Among accepted options, in any position.
		err := newApp(kgo.ClientID("a"), o, kgo.FetchMaxWait(time.Second))
		if err == nil {
			t.Errorf("kgo.%s was accepted", name)
			continue
		}
		if !strings.Contains(err.Error(), "kgo."+name+" ") || !strings.Contains(err.Error(), "WithKgoOptions: option 2") {
			t.Errorf("kgo.%s: the error does not name the option and its position: %v", name, err)
		}
	}
	if err := newApp(kgo.SessionTimeout(time.Second)); err == nil || !strings.Contains(err.Error(), "kstreams.WithSessionTimeout") {
		t.Errorf("kgo.SessionTimeout: the error does not point to kstreams.WithSessionTimeout: %v", err)
	}
	if err := newApp(nil); err == nil || !strings.Contains(err.Error(), "nil kgo.Opt") {
		t.Errorf("a nil option: %v", err)
	}

	accepted := map[string]kgo.Opt{
		"SeedBrokers":               kgo.SeedBrokers("127.0.0.1:2"),
		"DialTLSConfig":             kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}),
		"Dialer":                    kgo.Dialer((&net.Dialer{}).DialContext),
		"SASL scram":                kgo.SASL(scram.Auth{User: "u", Pass: "p"}.AsSha512Mechanism()),
		"SASL plain":                kgo.SASL(plain.Auth{User: "u", Pass: "p"}.AsMechanism()),
		"ClientID":                  kgo.ClientID("id"),
		"Rack":                      kgo.Rack("a"),
		"WithHooks":                 kgo.WithHooks(),
		"WithLogger":                kgo.WithLogger(kgo.BasicLogger(nil, kgo.LogLevelNone, nil)),
		"FetchMaxBytes":             kgo.FetchMaxBytes(1 << 20),
		"FetchMaxWait":              kgo.FetchMaxWait(time.Second),
		"ProducerLinger":            kgo.ProducerLinger(time.Millisecond),
		"ProducerBatchCompression":  kgo.ProducerBatchCompression(kgo.ZstdCompression()),
		"ProducerBatchMaxBytes":     kgo.ProducerBatchMaxBytes(1 << 20),
		"RecordRetries":             kgo.RecordRetries(10),
		"HeartbeatInterval":         kgo.HeartbeatInterval(time.Second),
		"RequireStableFetchOffsets": kgo.RequireStableFetchOffsets(),
		"DefaultProduceTopic":       kgo.DefaultProduceTopic("x"),
	}
	for name, o := range accepted {
		if err := newApp(o); err != nil {
			t.Errorf("%s was refused: %v", name, err)
		}
	}
}

// fetchSizes records the fetch sizes of the group client an app creates.
type fetchSizes struct {
	mu             sync.Mutex
	partition, all int32
}

func (f *fetchSizes) OnNewClient(cl *kgo.Client) {
	if g, _ := cl.OptValue(kgo.ConsumerGroup).(string); g == "" {
		return // the admin client or the restore consumer
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.partition = cl.OptValue(kgo.FetchMaxPartitionBytes).(int32)
	f.all = cl.OptValue(kgo.FetchMaxBytes).(int32)
}

// The consumer's fetch sizes follow the memory budget (a quarter of it for
// fetched records, half of that per fetch, 10 decoded bytes per fetched
// byte assumed until measured, divided among the input partitions), not
// franz-go's 1 MiB and 50 MiB: fetched records are most of an app's
// memory. kgo options given to WithKgoOptions override both.
func TestFetchSizes(t *testing.T) {
	brokers := testBrokers(t)
	for _, tc := range []struct {
		name           string
		opts           []kgo.Opt
		budget         int64
		partition, all int32
	}{
		// 32 MiB for fetched records, 16 per fetch, 1.6 MiB fetched (10
		// decoded bytes per fetched byte until measured), over 8 partitions.
		{"defaults", nil, 0, 16 << 20 / 10 / 8, 16 << 20 / 10},
		// 8 MiB, 4, 0.4 MiB fetched over 8 partitions; 1 MiB per fetch at
		// least.
		{"budget", nil, 32 << 20, 4 << 20 / 10 / 8, 1 << 20},
		{"overridden", []kgo.Opt{kgo.FetchMaxPartitionBytes(1 << 20), kgo.FetchMaxBytes(50 << 20)}, 32 << 20, 1 << 20, 50 << 20},
		// Either size given leaves both to franz-go (the other is its default).
		{"one overridden", []kgo.Opt{kgo.FetchMaxPartitionBytes(64 << 10)}, 0, 64 << 10, 50 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, out := uniqueName(t, "in"), uniqueName(t, "out")
			createTopics(t, brokers, 8, in, out)
			var f fetchSizes
			opts := []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(uniqueName(t, "app")),
				kstreams.WithKgoOptions(append(tc.opts, kgo.WithHooks(&f))...)}
			if tc.budget > 0 {
				opts = append(opts, kstreams.WithMemoryBudget(tc.budget))
			}
			a := startApp(t, passThrough(t, in, out), opts...)
			waitFor(t, 30*time.Second, "the app running", func() bool { return a.app.State() == kstreams.StateRunning })
			if err := a.stop(t); err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.partition != tc.partition || f.all != tc.all {
				t.Errorf("fetch sizes %d per partition, %d per fetch; want %d and %d", f.partition, f.all, tc.partition, tc.all)
			}
		})
	}
}
