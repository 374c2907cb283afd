package registry_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/kstreams-go/kstreams/serde/registry"
)

// FuzzDecodeID checks that DecodeID never panics, that what it accepts is a
// header followed by the rest it returns, and that what it rejects is
// rejected with sr.ErrBadHeader.
func FuzzDecodeID(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 1})
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff, 'x'})
	f.Add([]byte{1, 0, 0, 0, 1, 'x'})
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		id, rest, err := registry.DecodeID(data)
		if err != nil {
			if !errors.Is(err, sr.ErrBadHeader) {
				t.Fatalf("DecodeID(% x): %v does not match sr.ErrBadHeader", data, err)
			}
			if len(data) >= 5 && data[0] == 0 {
				t.Fatalf("DecodeID(% x) rejected a header: %v", data, err)
			}
			return
		}
		if again := append(registry.AppendHeader(nil, id, nil), rest...); !bytes.Equal(again, data) {
			t.Fatalf("DecodeID(% x) = %d, % x: re-encodes as % x", data, id, rest, again)
		}
	})
}
