package join

import (
	"bytes"
	"slices"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/table"
)

func TestSubscriptionAndResponseRoundTrip(t *testing.T) {
	hash := bytes.Repeat([]byte{7}, hashLen)
	ss := subscriptionSerde[string]{serde.String}
	for _, s := range []subscription[string]{
		{instr: propagateIfFound, hash: hash, partition: 3, key: "order-1"},
		{instr: unsubscribeAndPropagateOwnTime, partition: 0, key: ""},
	} {
		enc, err := ss.Serialize(nil, "t", nil, s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ss.Deserialize("t", nil, enc)
		if err != nil || got.instr != s.instr || !bytes.Equal(got.hash, s.hash) || (got.hash == nil) != (s.hash == nil) || got.partition != s.partition || got.key != s.key {
			t.Errorf("subscription %+v came back as %+v (%v)", s, got, err)
		}
	}
	rs := responseSerde[string]{serde.String}
	gold := "gold"
	for _, r := range []response[string]{{hash: hash, value: &gold}, {hash: hash}, {value: &gold}, {}} {
		enc, err := rs.Serialize(nil, "t", nil, r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := rs.Deserialize("t", nil, enc)
		if err != nil || !bytes.Equal(got.hash, r.hash) || (got.hash == nil) != (r.hash == nil) || (got.value == nil) != (r.value == nil) || got.value != nil && *got.value != *r.value {
			t.Errorf("response %+v came back as %+v (%v)", r, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {2, 1, 0, 0, 0, 0, 0}, {1, 9, 0, 0, 0, 0, 0}, {1, 1, 2}, {1, 1, 1, 5}, {1, 1, 0, 0, 0}, {1, 1, 0, 0x80, 0, 0, 0}} {
		if _, err := ss.Deserialize("t", nil, bad); err == nil {
			t.Errorf("subscription %v decoded", bad)
		}
	}
	for _, bad := range [][]byte{nil, {1}, {2, 0}, {1, 4}, {1, 1, 3}, {1, 0, 'x'}} {
		if _, err := rs.Deserialize("t", nil, bad); err == nil {
			t.Errorf("response %v decoded", bad)
		}
	}
}

func FuzzSubscription(f *testing.F) {
	ss := subscriptionSerde[string]{serde.String}
	seed, _ := ss.Serialize(nil, "t", nil, subscription[string]{instr: propagateNullIfMissing, hash: make([]byte, hashLen), partition: 2, key: "k"})
	f.Add(seed)
	f.Add([]byte{1, 3, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ss.Deserialize("t", nil, data)
		if err != nil {
			return
		}
		enc, err := ss.Serialize(nil, "t", nil, s)
		if err != nil || !bytes.Equal(enc, data) {
			t.Errorf("%v decoded to %+v, which encodes to %v (%v)", data, s, enc, err)
		}
	})
}

func FuzzResponse(f *testing.F) {
	rs := responseSerde[string]{serde.String}
	v := "gold"
	seed, _ := rs.Serialize(nil, "t", nil, response[string]{hash: make([]byte, hashLen), value: &v})
	f.Add(seed)
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := rs.Deserialize("t", nil, data)
		if err != nil {
			return
		}
		enc, err := rs.Serialize(nil, "t", nil, r)
		if err != nil || !bytes.Equal(enc, data) {
			t.Errorf("%v decoded to %+v, which encodes to %v (%v)", data, r, enc, err)
		}
	})
}

// A response for a left value that changed since its subscription (it
// arrives late, as on a cluster) is dropped; one for the current value is
// joined.
func TestStaleResponseIsDropped(t *testing.T) {
	b := kstreams.NewBuilder()
	orders := table.FromTopic(b, "orders", "orders", serde.String, serde.String, memory.Supplier())
	customers := table.FromTopic(b, "customers", "customers", serde.String, serde.String, memory.Supplier())
	topics := ForeignKeyTopics{Subscription: "sub", SubscriptionPartitions: 1, Response: "resp", ResponsePartitions: 1}
	j := ForeignKeyLeft(orders, customers, "fk", func(_, o string) (string, error) { return o[:2], nil },
		func(_, o string, c *string) (string, error) {
			if c == nil {
				return o + "/~", nil
			}
			return o + "/" + *c, nil
		}, topics, memory.Supplier())
	kstreams.Sink(j, "out", "out", serde.String, table.Nullable(serde.String))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := kstreamstest.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if err := kstreamstest.Input(d, "orders", serde.String, serde.String).PipeAt("o1", "c1:a", at); err != nil {
		t.Fatal(err)
	}
	if err := kstreamstest.Input(d, "orders", serde.String, serde.String).PipeAt("o1", "c2:b", at); err != nil {
		t.Fatal(err)
	}
	out := kstreamstest.Output(d, "out", serde.String, table.Nullable(serde.String))
	if rs, _ := out.ReadAll(); len(rs) != 2 {
		t.Fatalf("%d results, want 2", len(rs))
	}
	h := &valueHasher[string]{values: serde.String, topic: "sub"}
	old, _ := h.hash("c1:a")
	cur, _ := h.hash("c2:b")
	gold := "gold"
	resp := kstreamstest.Input(d, "resp", serde.String, serde.Serde[response[string]](responseSerde[string]{serde.String}))
	for _, r := range []response[string]{{hash: old, value: &gold}, {value: &gold}, {hash: cur, value: &gold}} {
		if err := resp.PipeAt("o1", r, at); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := out.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rs {
		got = append(got, *r.Value)
	}
	if want := []string{"c2:b/gold"}; !slices.Equal(got, want) {
		t.Errorf("results %q, want %q: only the response for the current value", got, want)
	}
}
