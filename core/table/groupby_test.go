package table_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/kstreams-go/kstreams/core/table"
)

// Users per region: a user moving region leaves one count and joins
// another; a deleted user leaves.
func TestGroupByCount(t *testing.T) {
	b := kstreams.NewBuilder()
	users := table.FromTopic(b, "users", "users", serde.String, serde.String, memory.Supplier())
	byRegion := table.GroupBy(users, "by-region", "users-by-region", 2, serde.String, serde.String,
		func(user, region string) (string, string, error) { return region, user, nil })
	counts := table.CountGroups(byRegion, "region-counts", memory.Supplier())
	members := table.AggregateGroups(byRegion, "region-log", serde.String, memory.Supplier(), func() string { return "" },
		func(_ string, user, agg string) (string, error) { return agg + "+" + user, nil },
		func(_ string, user, agg string) (string, error) { return agg + "-" + user, nil })
	var got []string
	kstreams.ForEach(counts.Updates(), "counts-out", func(r kstreams.Record[string, *int64]) error {
		got = append(got, fmt.Sprintf("%s=%d", r.Key, *r.Value))
		return nil
	})
	var log []string
	kstreams.ForEach(members.Updates(), "log-out", func(r kstreams.Record[string, *string]) error {
		log = append(log, fmt.Sprintf("%s:%s", r.Key, *r.Value))
		return nil
	})
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := kstreamstest.New(topo, kstreamstest.WithPartitions("users-by-region", 2))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := kstreamstest.Input(d, "users", serde.String, table.Nullable(serde.String))
	eu, us := "eu", "us"
	for _, s := range []struct {
		user   string
		region *string
	}{{"ann", &eu}, {"bob", &eu}, {"ann", &us}, {"bob", &eu}, {"bob", nil}, {"cid", nil}} {
		if err := in.PipeAt(s.user, s.region, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if want := "eu=1 eu=2 eu=1 us=1 eu=1 eu=0"; strings.Join(got, " ") != want {
		t.Errorf("counts %s, want %s", strings.Join(got, " "), want)
	}
	// bob's update to the same region is one change: out and back in.
	if want := "eu:+ann eu:+ann+bob eu:+ann+bob-ann us:+ann eu:+ann+bob-ann-bob+bob eu:+ann+bob-ann-bob+bob-bob"; strings.Join(log, " ") != want {
		t.Errorf("log %s, want %s", strings.Join(log, " "), want)
	}
}

// The users of each region as one value: a reduce with a subtractor.
func TestGroupByReduce(t *testing.T) {
	b := kstreams.NewBuilder()
	users := table.FromTopic(b, "users", "users", serde.String, serde.String, memory.Supplier())
	byRegion := table.GroupBy(users, "by-region", "users-by-region", 1, serde.String, serde.String,
		func(user, region string) (string, string, error) { return region, user, nil })
	members := table.ReduceGroups(byRegion, "members", memory.Supplier(),
		func(_ string, agg, user string) (string, error) { return agg + "+" + user, nil },
		func(_ string, agg, user string) (string, error) { return agg + "-" + user, nil })
	var got []string
	kstreams.ForEach(members.Updates(), "out", func(r kstreams.Record[string, *string]) error {
		got = append(got, fmt.Sprintf("%s:%s@%d", r.Key, *r.Value, int(r.Timestamp.Sub(t0)/time.Minute)))
		return nil
	})
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := kstreamstest.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := kstreamstest.Input(d, "users", serde.String, table.Nullable(serde.String))
	eu, us := "eu", "us"
	for i, s := range []struct {
		user   string
		region *string
	}{{"ann", &eu}, {"bob", &eu}, {"ann", &us}, {"cid", &eu}, {"bob", nil}} {
		if err := in.PipeAt(s.user, s.region, t0.Add(time.Duration(5-i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	// A group's first value is its aggregate (no separator); the latest
	// timestamp of a group's changes stamps it.
	if want := "eu:ann@5 eu:ann+bob@5 eu:ann+bob-ann@5 us:ann@3 eu:ann+bob-ann+cid@5 eu:ann+bob-ann+cid-bob@5"; strings.Join(got, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " "), want)
	}

	b = kstreams.NewBuilder()
	users = table.FromTopic(b, "users", "users", serde.String, serde.String, memory.Supplier())
	byRegion = table.GroupBy(users, "by-region", "users-by-region", 1, serde.String, serde.String,
		func(user, region string) (string, string, error) { return region, user, nil })
	table.ReduceGroups(byRegion, "members", memory.Supplier(), nil, nil)
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "table members: nil add or subtract function") {
		t.Errorf("Build: %v", err)
	}
}

func FuzzChangeSerde(f *testing.F) {
	s := table.ChangeSerdeForTest(serde.String)
	for _, c := range []table.Change[string]{{}, {New: ptr("a")}, {Old: ptr("b")}, {New: ptr(""), Old: ptr("old")}} {
		data, err := s.Serialize(nil, "t", nil, c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := s.Deserialize("t", nil, data)
		if err != nil {
			return
		}
		again, err := s.Serialize(nil, "t", nil, c)
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(data) {
			t.Fatalf("%x decodes to %v, which encodes to %x", data, c, again)
		}
	})
}

func ptr(s string) *string { return &s }
