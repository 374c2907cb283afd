package snapshot_test

import (
	"testing"

	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/snapshot"
)

// StoreStats counts the instance's requests to the bucket, by kind, as the
// bucket saw them.
func TestStoreStats(t *testing.T) {
	cb := &counting{Bucket: newDir(t)}
	supply := snapshot.Supplier(cb, fileLocal, snapshot.WithGarbageInterval(0))
	bc := store.BackendContext{App: "app", Store: "s", Task: "0_0", Dir: t.TempDir()}
	b := open(t, supply, bc)
	puts0, manifests0 := cb.filePuts.Load(), cb.manifestPuts.Load()
	for _, k := range []string{"a1", "b1", "c1"} {
		set(t, b, k, "v-"+k)
	}
	if err := b.FlushAt(1); err != nil {
		t.Fatal(err)
	}
	set(t, b, "a1", "again")
	if err := b.FlushAt(2); err != nil {
		t.Fatal(err)
	}
	st := b.StoreStats()
	if st.Closed {
		t.Fatal("StoreStats of an open backend says Closed")
	}
	up := st.Ops["upload"]
	if up.RoundTrips != cb.filePuts.Load()-puts0 || up.BytesSent != cb.filePutBytes.Load() || up.RoundTrips != 4 || up.Errors != 0 || up.Duration <= 0 {
		t.Fatalf("upload stats %+v; the bucket saw %d file uploads of %d bytes in all (want 4: parts a, b, c, then a again)", up, cb.filePuts.Load()-puts0, cb.filePutBytes.Load())
	}
	// The claim and two snapshots.
	if pm := st.Ops["put_manifest"]; pm.RoundTrips != cb.manifestPuts.Load()-manifests0+1 || pm.RoundTrips != 3 {
		t.Fatalf("put_manifest stats %+v; want 3 round trips (the claim and two snapshots)", pm)
	}
	if l := st.Ops["list"]; l.RoundTrips != 2 {
		t.Fatalf("list stats %+v; want 2 (a collection after each snapshot)", l)
	}
	if d := st.Ops["delete"]; d.RoundTrips != 1 {
		t.Fatalf("delete stats %+v; want 1 (part a's first upload)", d)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if !b.StoreStats().Closed {
		t.Fatal("StoreStats after Close does not say Closed")
	}

	bc.Dir = t.TempDir()
	gets0 := cb.fileGets.Load()
	c := open(t, supply, bc)
	defer closeQuietly(t, c)
	st = c.StoreStats()
	dl := st.Ops["download"]
	// Part a's first version (8 bytes: a1, v-a1 and their lengths) is no
	// longer referenced.
	if dl.RoundTrips != cb.fileGets.Load()-gets0 || dl.RoundTrips != 3 || dl.BytesReceived != up.BytesSent-8 {
		t.Fatalf("download stats %+v on a new disk; the bucket saw %d file gets; want 3 files of %d bytes", dl, cb.fileGets.Load()-gets0, up.BytesSent-8)
	}
	if gm := st.Ops["get_manifest"]; gm.RoundTrips != 1 {
		t.Fatalf("get_manifest stats %+v; want 1 (the claim's read)", gm)
	}
	if _, ok := st.Ops["upload"]; ok {
		t.Fatal("a new open reports the previous instance's uploads")
	}
}
