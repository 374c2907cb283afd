package bigtable

import (
	"bytes"
	"testing"

	"github.com/kstreams-go/kstreams/core/store"
)

// FuzzRowKey checks the row-key encoding: it round-trips, preserves the
// order of store keys within an instance, and keeps instances apart (no row
// of one instance falls in another's row range).
func FuzzRowKey(f *testing.F) {
	f.Add("app", "store", int32(0), []byte("k1"), "app", "store", int32(1), []byte("k2"))
	f.Add("a", "b\x00", int32(3), []byte{}, "a\x00b", "", int32(3), []byte{0xff})
	f.Add("", "", int32(-1), []byte{0x00}, "", "\x00\x01", int32(0), []byte{0x00, 0x00})
	f.Add("x\xff", "\x00\xff", int32(7), []byte{0xff, 0xff}, "x", "\xff\x00", int32(7), []byte{})
	f.Fuzz(func(t *testing.T, app1, store1 string, p1 int32, k1 []byte, app2, store2 string, p2 int32, k2 []byte) {
		i1, i2 := instancePrefix(app1, store1, p1), instancePrefix(app2, store2, p2)
		d1, d2 := dataPrefix(i1), dataPrefix(i2)
		r1, r2 := dataRowKey(d1, k1), dataRowKey(d2, k2)

		app, st, p, kind, key, err := decodeRowKey([]byte(r1))
		if err != nil || app != app1 || st != store1 || p != p1 || kind != kindData || !bytes.Equal(key, k1) {
			t.Fatalf("decode(%q) = %q %q %d %c %q %v; want %q %q %d d %q", r1, app, st, p, kind, key, err, app1, store1, p1, k1)
		}
		if _, _, _, kind, _, err := decodeRowKey([]byte(metaRowKey(i1))); err != nil || kind != kindMeta {
			t.Fatalf("meta row of %q/%q/%d does not decode: %c %v", app1, store1, p1, kind, err)
		}
		same := app1 == app2 && store1 == store2 && p1 == p2
		if same != bytes.Equal(i1, i2) {
			t.Fatalf("instances %q/%q/%d and %q/%q/%d: same=%v but prefixes %x, %x", app1, store1, p1, app2, store2, p2, same, i1, i2)
		}
		if same {
			// Within an instance, row order is key order.
			if got, want := compare(r1, r2), bytes.Compare(k1, k2); got != want {
				t.Fatalf("rows of %x and %x compare %d; keys compare %d", k1, k2, got, want)
			}
			return
		}
		// Apart: neither prefix starts the other, so each instance's rows,
		// meta row included, lie outside the other's range.
		if bytes.HasPrefix(i1, i2) || bytes.HasPrefix(i2, i1) {
			t.Fatalf("prefix %x starts %x", i1, i2)
		}
		end2 := store.PrefixEnd(i2)
		for _, row := range []string{r1, metaRowKey(i1)} {
			if row >= string(i2) && (end2 == nil || row < string(end2)) {
				t.Fatalf("row %x of %q/%q/%d is inside the range of %q/%q/%d", row, app1, store1, p1, app2, store2, p2)
			}
		}
	})
}

func compare(a, b string) int { return bytes.Compare([]byte(a), []byte(b)) }

func TestDecodeRejectsForeignRows(t *testing.T) {
	for _, row := range []string{"", "x", "app\x00\x02", "a\x00\x01b\x00\x01\x00\x00\x00\x01z", "a\x00\x01b\x00\x01\x00\x00\x00\x01mx"} {
		if _, _, _, _, _, err := decodeRowKey([]byte(row)); err == nil {
			t.Errorf("decodeRowKey(%q) accepted a row that is not a kstreams row", row)
		}
	}
}

// Keys at the edges of the order (empty, 0x00, 0xff runs) order and bound
// ranges correctly, flushed and unflushed alike.
func TestEdgeKeys(t *testing.T) {
	e := startEmulator(t)
	b := e.open(t, freshContext())
	defer b.Close()
	keys := []string{"", "\x00", "\x00\x00", "\x00\xff", "\x01", "\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff"}
	for i, k := range keys {
		mustSet(t, b, k, k)
		if i%2 == 0 {
			if err := b.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(lo, hi []byte, want []string) {
		t.Helper()
		var got []string
		for e, err := range b.Range(lo, hi) {
			if err != nil {
				t.Fatal(err)
			}
			if string(e.Key) != string(e.Value) {
				t.Fatalf("value of %x is %x", e.Key, e.Value)
			}
			got = append(got, string(e.Key))
		}
		if len(got) != len(want) {
			t.Fatalf("Range(%x, %x) = %q; want %q", lo, hi, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("Range(%x, %x) = %q; want %q", lo, hi, got, want)
			}
		}
	}
	check(nil, nil, keys)
	check([]byte{}, []byte{0x00}, keys[:1])
	check([]byte{0x00}, []byte{0x01}, keys[1:4])
	check([]byte{0xff}, nil, keys[5:])
	check([]byte{0xff, 0xff}, []byte{0xff, 0xff, 0xff}, keys[7:8])
	if err := b.DeleteRange([]byte{0xff}, nil); err != nil {
		t.Fatal(err)
	}
	check(nil, nil, keys[:5])
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	check(nil, nil, keys[:5])
	// A key too long for a row key is refused, not sent.
	if err := b.Set(make([]byte, maxRowKey), nil); err == nil {
		t.Fatal("Set of a key longer than a row key: no error")
	}
}
