package registry

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/sr"
)

var header sr.ConfluentHeader // stateless

// AppendHeader appends the wire-format header for schema id to dst: the
// magic byte 0, id as 4 big-endian bytes, then, for protobuf, the message
// index (nil or empty for other formats).
func AppendHeader(dst []byte, id int, index []int) []byte {
	out, _ := header.AppendEncode(dst, id, index) // never fails
	return out
}

// DecodeID reads the wire-format header at the start of data and returns the
// schema id and the bytes after the header (for protobuf, the message index
// then the payload). If data does not start with a header, the error says
// why (too short, or which magic byte it has instead of 0) and matches
// [sr.ErrBadHeader] with errors.Is.
func DecodeID(data []byte) (id int, rest []byte, err error) {
	id, rest, err = header.DecodeID(data)
	if err != nil {
		return 0, nil, fmt.Errorf("decoding schema-registry header: %w", headerError(data, err))
	}
	return id, rest, nil
}

// headerError explains why data does not start with a schema-registry header.
// It wraps err (sr.ErrBadHeader) so that errors.Is still matches it.
func headerError(data []byte, err error) error {
	switch {
	case len(data) < 5:
		return fmt.Errorf("%d bytes, shorter than the 5-byte schema-registry header (magic byte 0, 4-byte schema id): %w", len(data), err)
	case data[0] != 0:
		return fmt.Errorf("magic byte is 0x%02x, want 0x00: data is not in the schema-registry wire format: %w", data[0], err)
	}
	return err
}
