package join

import (
	"testing"

	"github.com/kstreams-go/kstreams/core/serde"
)

func TestUnmatchedKeyOrder(t *testing.T) {
	s := unmatchedKeySerde[string]{keys: serde.String}
	enc := func(k unmatchedKey[string]) string {
		b, err := s.Serialize(nil, "t", nil, k)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// Timestamp first (negative before positive), then side (right
	// first), then key.
	keys := []unmatchedKey[string]{
		{ts: -5, right: false, key: "z"},
		{ts: 3, right: true, key: "b", seq: 9},
		{ts: 3, right: false, key: "a"},
		{ts: 4, right: false, key: "a"},
		{ts: 4, right: false, key: "a", seq: 1},
	}
	for i := 1; i < len(keys); i++ {
		if enc(keys[i-1]) >= enc(keys[i]) {
			t.Errorf("%v does not sort before %v", keys[i-1], keys[i])
		}
	}
}

func FuzzUnmatchedKey(f *testing.F) {
	s := unmatchedKeySerde[string]{keys: serde.String}
	seed, _ := s.Serialize(nil, "t", nil, unmatchedKey[string]{ts: 7, right: true, key: "k", seq: 2})
	f.Add(seed)
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := s.Deserialize("t", nil, data)
		if err != nil {
			return
		}
		again, err := s.Serialize(nil, "t", nil, k)
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(data) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", data, k, again)
		}
	})
}
