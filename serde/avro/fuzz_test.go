package avro_test

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// FuzzDeserialize checks that Deserialize never panics and never allocates
// without bound, and that whatever it accepts survives a round trip.
func FuzzDeserialize(f *testing.F) {
	s := mustNew[Record](f, recordSchema)
	good, err := s.Serialize(nil, "t", nil, sampleRecord())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	for _, n := range []int{0, 1, len(good) / 3, len(good) / 2, len(good) - 1} {
		f.Add(good[:n])
	}
	// Negative block counts (with a byte size), and a huge count.
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 4, 2, 'a', 0})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	rng := rand.New(rand.NewPCG(1, 2))
	for range 8 {
		b := make([]byte, rng.IntN(64))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := s.Deserialize("t", nil, data)
		if err != nil {
			return
		}
		b, err := s.Serialize(nil, "t", nil, v)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", v, err)
		}
		w, err := s.Deserialize("t", nil, b)
		if err != nil {
			t.Fatalf("decoding re-encoded % x: %v", b, err)
		}
		if !reflect.DeepEqual(normalize(v), normalize(w)) {
			t.Fatalf("round trip changed the value: %+v -> %+v", v, w)
		}
	})
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
