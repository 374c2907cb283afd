package store_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
)

func TestSessionStore(t *testing.T) {
	b := memory.New()
	ss := store.NewSessionStore("s", "s", b, 3*time.Hour, time.Hour, serde.String, serde.Int64)
	base := time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)
	sess := func(from, to time.Duration) store.Window {
		return store.Window{Start: base.Add(from), End: base.Add(to)}
	}
	// Keys whose encodings are prefixes of each other stay apart.
	puts := []struct {
		key string
		w   store.Window
	}{
		{"a", sess(0, 10*time.Minute)},
		{"a", sess(30*time.Minute, 2*time.Hour)}, // a long session: its end is in a later segment
		{"ab", sess(5*time.Minute, 6*time.Minute)},
		{"b", sess(0, 0)},
	}
	for i, p := range puts {
		if err := ss.Put(p.key, p.w, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	fetch := func(key string, from, to time.Duration) []string {
		var out []string
		for w, err := range ss.Fetch(key, base.Add(from), base.Add(to)) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s%v=%d", w.Key, []time.Duration{w.Window.Start.Sub(base), w.Window.End.Sub(base)}, w.Value))
		}
		return out
	}
	if got, want := fetch("a", 0, 3*time.Hour), []string{"a[0s 10m0s]=0", "a[30m0s 2h0m0s]=1"}; !slices.Equal(got, want) {
		t.Fatalf("Fetch(a, all) = %v, want %v", got, want)
	}
	// Overlap: End >= from and Start <= to.
	if got, want := fetch("a", 11*time.Minute, 29*time.Minute), []string(nil); !slices.Equal(got, want) {
		t.Fatalf("Fetch(a, gap) = %v, want none", got)
	}
	if got, want := fetch("a", 10*time.Minute, 30*time.Minute), []string{"a[0s 10m0s]=0", "a[30m0s 2h0m0s]=1"}; !slices.Equal(got, want) {
		t.Fatalf("Fetch(a, touching both) = %v, want %v", got, want)
	}
	if got, want := fetch("a", 3*time.Hour, 4*time.Hour), []string(nil); !slices.Equal(got, want) {
		t.Fatalf("Fetch(a, after) = %v, want none", got)
	}
	n := 0
	for _, err := range ss.FetchAll(base, base.Add(time.Minute)) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 2 { // a's first session and b's
		t.Fatalf("FetchAll(first minute) found %d sessions, want 2", n)
	}
	if err := ss.Delete("ab", sess(5*time.Minute, 6*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := ss.Get("ab", sess(5*time.Minute, 6*time.Minute)); err != nil || ok {
		t.Fatalf("Get of a deleted session = %v, %v, %v; want absent, no error", v, ok, err)
	}
	// A session ending 10h later expires everything ending 3h before it:
	// the long session (end 2h) is gone.
	if err := ss.Put("c", sess(10*time.Hour, 10*time.Hour), 9); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := ss.Get("a", sess(30*time.Minute, 2*time.Hour)); err != nil || ok {
		t.Fatalf("Get of an expired session = %v, %v, %v; want absent, no error", v, ok, err)
	}
	if b.Len() != 1 {
		t.Fatalf("%d raw entries after expiry, want 1", b.Len())
	}
}
