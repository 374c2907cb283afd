package store_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"iter"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/store/memory"
)

// goldenWindowed opens the window or session store of testdata/stores.golden
// over b.
func goldenWindowed(kind string, b store.Backend) interface {
	Put(string, store.Window, int64) error
	Get(string, store.Window) (int64, bool, error)
	Fetch(string, time.Time, time.Time) iter.Seq2[store.Windowed[string, int64], error]
} {
	if kind == "window" {
		return store.NewWindowStore("w", "w", b, time.Hour, 30*time.Minute, serde.String, serde.Int64)
	}
	return store.NewSessionStore("s", "s", b, time.Hour, 30*time.Minute, serde.String, serde.Int64)
}

// TestStoreLayoutGolden pins the raw entries the typed stores write to their
// backend (testdata/stores.golden): a Put writes exactly the pinned entry, and
// a backend holding the pinned entry (written by an earlier version, or
// restored from its changelog) reads back as the same key, window and value.
func TestStoreLayoutGolden(t *testing.T) {
	f, err := os.Open("testdata/stores.golden")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kinds := map[string]int{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 7 {
			t.Fatalf("line %d: %d fields, want 7: %q", n, len(fields), line)
		}
		kind := fields[0]
		key, err := strconv.Unquote(fields[1])
		if err != nil {
			t.Fatalf("line %d: key: %v", n, err)
		}
		value, err := strconv.ParseInt(fields[4], 10, 64)
		if err != nil {
			t.Fatalf("line %d: value: %v", n, err)
		}
		rawKey, rawValue := fields[5], fields[6]
		if rawKey == "-" {
			rawKey = ""
		}
		wantKey, err1 := hex.DecodeString(rawKey)
		wantValue, err2 := hex.DecodeString(rawValue)
		if err1 != nil || err2 != nil {
			t.Fatalf("line %d: hex: %v %v", n, err1, err2)
		}
		kinds[kind]++

		// Writing: exactly the pinned entry.
		written := memory.New()
		var w store.Window
		switch kind {
		case "window", "session":
			start, err1 := time.Parse(time.RFC3339Nano, fields[2])
			end, err2 := time.Parse(time.RFC3339Nano, fields[3])
			if err1 != nil || err2 != nil {
				t.Fatalf("line %d: window: %v %v", n, err1, err2)
			}
			w = store.Window{Start: start, End: end}
			if err := goldenWindowed(kind, written).Put(key, w, value); err != nil {
				t.Fatalf("line %d: Put: %v", n, err)
			}
		case "kv":
			if err := store.NewKeyValueStore("kv", "kv", written, serde.String, serde.Int64).Put(key, value); err != nil {
				t.Fatalf("line %d: Put: %v", n, err)
			}
		default:
			t.Fatalf("line %d: unknown kind %q", n, kind)
		}
		var entries []store.Entry
		for e, err := range written.Range(nil, nil) {
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, store.Entry{Key: bytes.Clone(e.Key), Value: bytes.Clone(e.Value)})
		}
		if len(entries) != 1 || !bytes.Equal(entries[0].Key, wantKey) || !bytes.Equal(entries[0].Value, wantValue) {
			t.Errorf("line %d: Put wrote %x; the pinned entry is %x = %x", n, entries, wantKey, wantValue)
		}

		// Reading what was written before.
		old := memory.New()
		if err := old.Set(wantKey, wantValue); err != nil {
			t.Fatal(err)
		}
		switch kind {
		case "window", "session":
			s := goldenWindowed(kind, old)
			got, ok, err := s.Get(key, w)
			if err != nil || !ok || got != value {
				t.Errorf("line %d: Get of the pinned entry = %d, %v, %v; want %d", n, got, ok, err, value)
			}
			found := 0
			for e, err := range s.Fetch(key, w.Start.Add(-time.Minute), w.End.Add(time.Minute)) {
				if err != nil {
					t.Fatalf("line %d: Fetch: %v", n, err)
				}
				found++
				if e.Key != key || e.Value != value || !e.Window.Start.Equal(w.Start) || !e.Window.End.Equal(w.End) {
					t.Errorf("line %d: Fetch of the pinned entry = %+v; want %q %v %d", n, e, key, w, value)
				}
			}
			if found != 1 {
				t.Errorf("line %d: Fetch found %d entries, want 1", n, found)
			}
		case "kv":
			got, ok, err := store.NewKeyValueStore("kv", "kv", old, serde.String, serde.Int64).Get(key)
			if err != nil || !ok || got != value {
				t.Errorf("line %d: Get of the pinned entry = %d, %v, %v; want %d", n, got, ok, err, value)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if kinds["window"] < 2 || kinds["session"] < 2 || kinds["kv"] < 2 {
		t.Fatalf("golden lines per kind %v: too few", kinds)
	}
}
