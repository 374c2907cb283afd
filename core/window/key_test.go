package window_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/window"
)

func TestKeySerdeRoundTripAndOrder(t *testing.T) {
	ks := window.KeySerde(serde.String)
	mk := func(k string, start, end int64) window.Key[string] {
		return window.Key[string]{Key: k, Window: window.Window{Start: time.Unix(0, start).UTC(), End: time.Unix(0, end).UTC()}}
	}
	// In the order the encoding must sort them: by key bytes (a prefix
	// first, zero bytes escaped), then start (negative first), then end.
	keys := []window.Key[string]{
		mk("", 0, 1),
		mk("a", -5, 0),
		mk("a", 0, 10),
		mk("a", 0, 20),
		mk("a", 1, 2),
		mk("a\x00", 0, 1),
		mk("a\x00\x00b", 0, 1),
		mk("a\x01", -100, 1),
		mk("ab", -100, 1),
		mk("b\xff", 0, 1),
	}
	var encs [][]byte
	for _, k := range keys {
		b, err := ks.Serialize(nil, "t", nil, k)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ks.Deserialize("t", nil, b)
		if err != nil {
			t.Fatalf("%v: %v", k, err)
		}
		if got.Key != k.Key || !got.Window.Start.Equal(k.Window.Start) || !got.Window.End.Equal(k.Window.End) {
			t.Fatalf("round trip of %v gave %v", k, got)
		}
		encs = append(encs, b)
	}
	if !slices.IsSortedFunc(encs, bytes.Compare) {
		t.Fatalf("encodings are not in key order: %x", encs)
	}
	// Appends to dst.
	b, _ := ks.Serialize([]byte("xy"), "t", nil, keys[5])
	if !bytes.HasPrefix(b, []byte("xy")) {
		t.Fatalf("Serialize did not append: %x", b)
	}
	for _, bad := range [][]byte{{}, {'a'}, {'a', 0}, {'a', 0, 2}, {'a', 0, 1, 1}} {
		if _, err := ks.Deserialize("t", nil, bad); err == nil {
			t.Errorf("Deserialize(%x) succeeded", bad)
		}
	}
}

func FuzzKeySerde(f *testing.F) {
	ks := window.KeySerde(serde.Bytes)
	f.Add([]byte("a\x00b"), int64(0), int64(1), []byte{})
	f.Add([]byte{}, int64(-1), int64(1<<62), []byte{0, 1})
	f.Fuzz(func(t *testing.T, key []byte, start, end int64, raw []byte) {
		// Decoding arbitrary bytes never panics.
		if k, err := ks.Deserialize("t", nil, raw); err == nil {
			again, err := ks.Serialize(nil, "t", nil, k)
			if err != nil || !bytes.Equal(again, raw) {
				t.Fatalf("%x decodes to %v, which encodes to %x, %v", raw, k, again, err)
			}
		}
		k := window.Key[[]byte]{Key: key, Window: window.Window{Start: time.Unix(0, start), End: time.Unix(0, end)}}
		b, err := ks.Serialize(nil, "t", nil, k)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ks.Deserialize("t", nil, b)
		if err != nil || !bytes.Equal(got.Key, key) || got.Window.Start.UnixNano() != start || got.Window.End.UnixNano() != end {
			t.Fatalf("round trip of %v: %v, %v", k, got, err)
		}
	})
}

func TestStampedSerde(t *testing.T) {
	s := window.StampedSerde(serde.String)
	for _, v := range []window.Stamped[string]{{Value: "", Timestamp: time.Unix(0, -3).UTC()}, {Value: "x", Timestamp: time.Unix(5, 6).UTC()}} {
		b, err := s.Serialize(nil, "t", nil, v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Deserialize("t", nil, b)
		if err != nil || got.Value != v.Value || !got.Timestamp.Equal(v.Timestamp) {
			t.Fatalf("round trip of %+v: %+v, %v", v, got, err)
		}
	}
	if _, err := s.Deserialize("t", nil, []byte{1, 2}); err == nil {
		t.Error("short data decoded")
	}
}
