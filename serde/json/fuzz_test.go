package json_test

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/kstreams-go/kstreams/serde/json"
)

// FuzzDeserialize checks that Deserialize never panics, and that whatever it
// accepts survives an encode/decode round trip unchanged.
func FuzzDeserialize(f *testing.F) {
	s := json.New[Record]()
	good, err := s.Serialize(nil, "t", nil, sampleRecord())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	for _, n := range []int{0, 1, len(good) / 3, len(good) / 2, len(good) - 1} {
		f.Add(good[:n])
	}
	f.Add([]byte(`{"tags":null,"id":-0,"score":1e308,"name":"\u00e9\ud83d\ude00"}`))
	f.Add([]byte(`null`))
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
			t.Fatalf("decoding re-encoded %q: %v", b, err)
		}
		if !reflect.DeepEqual(normalize(v), normalize(w)) {
			t.Fatalf("round trip changed the value: %+v -> %+v", v, w)
		}
	})
}

// normalize maps an empty Tags to nil: JSON null and [] both decode to
// an empty slice in some form, and re-encoding turns nil into [].
func normalize(r Record) Record {
	if len(r.Tags) == 0 {
		r.Tags = nil
	}
	return r
}
