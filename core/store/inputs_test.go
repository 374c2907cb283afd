package store_test

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/kstreams-go/kstreams/core/store"
)

// The encoding is stored in buckets and remote stores: it must never change.
func TestInputOffsetsGolden(t *testing.T) {
	o := store.InputOffsets{"orders": 300, "clicks": 5}
	b, err := o.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	const want = "0102" + "06" + "636c69636b73" + "05" + "06" + "6f7264657273" + "ac02"
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("encoding changed:\n got %s\nwant %s", got, want)
	}
	back, err := store.ParseInputOffsets(b)
	if err != nil || !back.Equal(o) {
		t.Fatalf("round trip: %v, %v", back, err)
	}
	if s := o.String(); s != "{clicks@5 orders@300}" {
		t.Fatalf("String: %s", s)
	}
	empty, err := store.InputOffsets{}.MarshalBinary()
	if err != nil || !bytes.Equal(empty, []byte{1, 0}) {
		t.Fatalf("empty: %x %v", empty, err)
	}
}

func TestInputOffsetsRefusals(t *testing.T) {
	if _, err := (store.InputOffsets{"t": -1}).MarshalBinary(); err == nil {
		t.Fatal("negative offset encoded")
	}
	if _, err := (store.InputOffsets{"": 1}).MarshalBinary(); err == nil {
		t.Fatal("empty topic encoded")
	}
	for name, b := range map[string]string{
		"empty":     "",
		"version 2": "0200",
		"truncated": "0101",
		"trailing":  "0100ff",
		"unsorted":  "0102" + "0162" + "01" + "0161" + "01",
		"repeated":  "0102" + "0161" + "01" + "0161" + "01",
		"zero name": "010100" + "01",
		"huge":      "01" + "ffffffffffffffffff01",
		"offset":    "0101" + "0161" + "ffffffffffffffffff01",
	} {
		raw, _ := hex.DecodeString(b)
		if o, err := store.ParseInputOffsets(raw); err == nil {
			t.Errorf("%s: decoded %v", name, o)
		} else if !strings.Contains(err.Error(), "input offsets") {
			t.Errorf("%s: error does not say what it decoded: %v", name, err)
		}
	}
}

func FuzzParseInputOffsets(f *testing.F) {
	for _, o := range []store.InputOffsets{{}, {"a": 0}, {"orders": 300, "clicks": 5}} {
		b, _ := o.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := store.ParseInputOffsets(b)
		if err != nil {
			return
		}
		again, err := o.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded %v does not encode: %v", o, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("not canonical: %x decodes to %v, which encodes to %x", b, o, again)
		}
	})
}
