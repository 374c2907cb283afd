package msgpack_test

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"

	upstream "github.com/vmihailenco/msgpack/v5"

	"github.com/kstreams-go/kstreams/serde/msgpack"
)

// FuzzDeserialize checks that Deserialize never panics, that what it accepts
// is one well-formed value by the upstream decoder's reckoning, and that it
// survives a round trip. FuzzValidate compares the validation pass itself
// with the upstream decoder.
func FuzzDeserialize(f *testing.F) {
	s := msgpack.New[Record]()
	sa := msgpack.New[Record](msgpack.ArrayStructs())
	anyS := msgpack.New[any]()
	for _, ser := range []*msgpack.Serde[Record]{s, sa} {
		good, err := ser.Serialize(nil, "t", nil, sampleRecord())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(good)
		for _, n := range []int{0, 1, len(good) / 3, len(good) / 2, len(good) - 1} {
			f.Add(good[:n])
		}
	}
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0xc7, 0x01, 0xff, 0x00})
	f.Add([]byte{0xd6, 0xff, 0, 0, 0, 1}) // a timestamp ext
	rng := rand.New(rand.NewPCG(1, 2))
	for range 8 {
		b := make([]byte, rng.IntN(64))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := anyS.Deserialize("t", nil, data); err == nil {
			mustSkip(t, data)
		}
		v, err := s.Deserialize("t", nil, data)
		if err != nil {
			return
		}
		mustSkip(t, data)
		for _, ser := range []*msgpack.Serde[Record]{s, sa} {
			b, err := ser.Serialize(nil, "t", nil, v)
			if err != nil {
				t.Fatalf("re-encoding %+v: %v", v, err)
			}
			w, err := s.Deserialize("t", nil, b)
			if err != nil {
				t.Fatalf("decoding re-encoded %x: %v", b, err)
			}
			if !reflect.DeepEqual(normalize(v), normalize(w)) {
				t.Fatalf("round trip changed the value: %+v -> %+v", v, w)
			}
		}
	})
}

// mustSkip fails unless the upstream decoder reads data as exactly one value.
func mustSkip(t *testing.T, data []byte) {
	t.Helper()
	r := bytes.NewReader(data)
	if err := upstream.NewDecoder(r).Skip(); err != nil {
		t.Fatalf("accepted % x, but upstream cannot skip it: %v", data, err)
	}
	if r.Len() != 0 {
		t.Fatalf("accepted % x, but upstream leaves %d bytes after the value", data, r.Len())
	}
}

// normalize maps an empty Tags to nil and NaNs to a fixed value, which
// compare unequal to themselves.
func normalize(r Record) Record {
	if len(r.Tags) == 0 {
		r.Tags = nil
	}
	if r.Score != r.Score {
		r.Score = -1
	}
	if r.Balance != r.Balance {
		r.Balance = -1
	}
	return r
}
