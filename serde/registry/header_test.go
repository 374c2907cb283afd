package registry_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/kstreams-go/kstreams/serde/registry"
)

func TestAppendHeader(t *testing.T) {
	for _, tc := range []struct {
		dst   []byte
		id    int
		index []int
		want  []byte
	}{
		{nil, 2, nil, []byte{0, 0, 0, 0, 2}},
		{[]byte("p"), 0x01020304, nil, []byte{'p', 0, 1, 2, 3, 4}},
		{nil, 7, []int{0}, []byte{0, 0, 0, 0, 7, 0}},          // first-message shortcut
		{nil, 7, []int{1, 2}, []byte{0, 0, 0, 0, 7, 4, 2, 4}}, // count, then zigzag varints
		{nil, 1 << 31, nil, []byte{0, 0x80, 0, 0, 0}},         // ids are unsigned 32-bit
	} {
		if got := registry.AppendHeader(tc.dst, tc.id, tc.index); !bytes.Equal(got, tc.want) {
			t.Errorf("AppendHeader(%q, %d, %v) = % x, want % x", tc.dst, tc.id, tc.index, got, tc.want)
		}
	}
}

func TestDecodeID(t *testing.T) {
	data := append(registry.AppendHeader(nil, 258, nil), "payload"...)
	id, rest, err := registry.DecodeID(data)
	if err != nil || id != 258 || string(rest) != "payload" {
		t.Fatalf("DecodeID(% x) = %d, %q, %v", data, id, rest, err)
	}
	if id, rest, err := registry.DecodeID(data[:5]); err != nil || id != 258 || len(rest) != 0 {
		t.Fatalf("header only: %d, %q, %v", id, rest, err)
	}
	for _, tc := range []struct {
		data []byte
		want string
	}{
		{nil, "decoding schema-registry header: 0 bytes, shorter than the 5-byte schema-registry header (magic byte 0, 4-byte schema id): "},
		{[]byte{0, 0, 0, 1}, "decoding schema-registry header: 4 bytes, shorter than the 5-byte schema-registry header (magic byte 0, 4-byte schema id): "},
		{[]byte("{\"a\": 1}"), "decoding schema-registry header: magic byte is 0x7b, want 0x00: data is not in the schema-registry wire format: "},
	} {
		id, rest, err := registry.DecodeID(tc.data)
		if err == nil || err.Error() != tc.want+sr.ErrBadHeader.Error() || !errors.Is(err, sr.ErrBadHeader) {
			t.Errorf("DecodeID(% x) = %d, %q, %v; want the error %q wrapping sr.ErrBadHeader", tc.data, id, rest, err, tc.want)
		}
	}
}
