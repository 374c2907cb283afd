package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
)

// testGetMany checks store.GetMany on the backend: the backend's own
// GetMany if it implements store.BatchGetter, else the loop of Gets; then
// the typed store's GetMany.
func testGetMany(t *testing.T, b store.Backend) {
	mustSet(t, b, "a", "1")
	mustSet(t, b, "b", "2")
	mustSet(t, b, "empty", "")
	mustSet(t, b, "gone", "x")
	if err := b.Delete([]byte("gone")); err != nil {
		t.Fatal(err)
	}
	keys := [][]byte{[]byte("b"), []byte("missing"), []byte("a"), []byte("empty"), []byte("gone"), []byte("b"), {}}
	values, found, err := store.GetMany(b, keys)
	if err != nil {
		t.Fatalf("GetMany: %v", err)
	}
	if got, want := fmt.Sprintf("%q %v", values[:4], found), `["2" "" "1" ""] [true false true true false true false]`; got != want {
		t.Fatalf("GetMany = %s (first 4 values); want %s", got, want)
	}
	if string(values[5]) != "2" {
		t.Fatalf("GetMany of a repeated key: %q; want \"2\"", values[5])
	}
	// The caller may keep and reuse: keys are its own, values stay valid.
	keys[0][0] = 'z'
	mustSet(t, b, "a", "changed")
	if string(values[2]) != "1" {
		t.Fatalf("a value GetMany returned changed to %q after a write", values[2])
	}
	wantGet(t, b, "b", "2", true)
	if values, found, err := store.GetMany(b, nil); err != nil || len(values) != 0 || len(found) != 0 {
		t.Fatalf("GetMany(nil) = %q, %v, %v; want empty", values, found, err)
	}

	s := store.NewKeyValueStore("many", "many", b, serde.Int64, serde.String)
	for _, n := range []int64{-3, 7, 1 << 40} {
		if err := s.Put(n, fmt.Sprint(n)); err != nil {
			t.Fatal(err)
		}
	}
	tv, tf, err := s.GetMany([]int64{7, 8, -3, 1 << 40, 7})
	if err != nil {
		t.Fatalf("typed GetMany: %v", err)
	}
	if got, want := fmt.Sprintf("%q %v", tv, tf), `["7" "" "-3" "1099511627776" "7"] [true false true true true]`; got != want {
		t.Fatalf("typed GetMany = %s; want %s", got, want)
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.GetMany(b, [][]byte{[]byte("a")}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("GetMany after Close: %v; want ErrClosed", err)
	}
}
