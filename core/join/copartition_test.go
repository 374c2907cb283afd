package join_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/internal/kafkatest"
	"github.com/kstreams-go/kstreams/core/join"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/table"
	"github.com/twmb/franz-go/pkg/kadm"
)

func enrichTopology(t *testing.T, orders, customers, out string) *kstreams.Topology {
	t.Helper()
	b := kstreams.NewBuilder()
	ords := kstreams.Source(b, "orders", []string{orders}, serde.String, serde.String)
	cs := table.FromTopic(b, "customers", customers, serde.String, serde.String, memory.Supplier())
	kstreams.Sink(join.StreamTable(ords, cs, "enrich", func(_ string, o, c string) (string, error) { return o + "/" + c, nil }),
		"out", out, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// Joined topics of different partition counts are refused at start, with
// an error naming them, by the test driver and by an application, which
// then creates no topic.
func TestJoinedTopicsMustBeCoPartitioned(t *testing.T) {
	topo := enrichTopology(t, "orders", "customers", "out")
	_, err := kstreamstest.New(topo, kstreamstest.WithPartitions("orders", 4), kstreamstest.WithPartitions("customers", 3))
	if err == nil || !strings.Contains(err.Error(), "reads topics with different partition counts") || !strings.Contains(err.Error(), "co-partitioned topics need equal counts") {
		t.Errorf("driver: %v", err)
	}

	if testing.Short() {
		return
	}
	brokers := kafkatest.Brokers(t)
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	orders, customers, out, appID := "cporders-"+suffix, "cpcustomers-"+suffix, "cpout-"+suffix, "cp-it-"+suffix
	kafkatest.CreateTopics(t, brokers, 4, orders, out)
	kafkatest.CreateTopics(t, brokers, 3, customers)
	app, err := kstreams.NewApp(enrichTopology(t, orders, customers, out), kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = app.Run(ctx)
	t.Logf("app: %v", err)
	if err == nil || !strings.Contains(err.Error(), "which must be co-partitioned") ||
		!strings.Contains(err.Error(), orders) || !strings.Contains(err.Error(), customers) {
		t.Fatalf("app: %v", err)
	}
	topics, err := kadm.NewClient(kafkatest.Client(t, brokers)).ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range topics.Names() {
		if strings.HasPrefix(name, appID) {
			t.Errorf("the refused app created topic %s", name)
		}
	}
}
