package msgpack

import (
	"encoding/binary"
	"errors"
	"fmt"
)

var errTruncated = errors.New("truncated data")

// validate checks that data holds exactly one well-formed MessagePack value:
// every type byte is defined, every length prefix fits in the remaining
// bytes (so that a container of n elements needs at least n more bytes,
// which bounds what a decoder allocates for it), containers nest at most
// MaxDepth deep, and no bytes follow the value. It does not allocate for
// nesting up to 64 levels.
func validate(data []byte) error {
	var buf [64]uint64
	// pending[i] is the number of values still to read at nesting level i.
	pending := append(buf[:0], 1)
	i := 0
	for len(pending) > 0 {
		top := len(pending) - 1
		if pending[top] == 0 {
			pending = pending[:top]
			continue
		}
		pending[top]--
		if i >= len(data) {
			return errTruncated
		}
		start := i
		c := data[i]
		i++
		var (
			size     int    // bytes of the length field that follows c
			skip     uint64 // bytes of payload after the length field
			children uint64 // values contained
			extType  bool   // an ext's type byte follows the length
		)
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
			// fixint, nil, bool
		case c <= 0x8f: // fixmap
			children = 2 * uint64(c&0x0f)
		case c <= 0x9f: // fixarray
			children = uint64(c & 0x0f)
		case c <= 0xbf: // fixstr
			skip = uint64(c & 0x1f)
		case c == 0xc1:
			return fmt.Errorf("byte 0x%02x at offset %d is not a MessagePack type", c, start)
		case c >= 0xc4 && c <= 0xc6: // bin 8/16/32
			size = 1 << (c - 0xc4)
		case c >= 0xc7 && c <= 0xc9: // ext 8/16/32
			size, extType = 1<<(c-0xc7), true
		case c == 0xca: // float32
			skip = 4
		case c == 0xcb: // float64
			skip = 8
		case c >= 0xcc && c <= 0xcf: // uint 8..64
			skip = 1 << (c - 0xcc)
		case c >= 0xd0 && c <= 0xd3: // int 8..64
			skip = 1 << (c - 0xd0)
		case c >= 0xd4 && c <= 0xd8: // fixext 1..16: type byte + data
			skip = 1 + 1<<(c-0xd4)
		case c >= 0xd9 && c <= 0xdb: // str 8/16/32
			size = 1 << (c - 0xd9)
		case c == 0xdc || c == 0xdd: // array 16/32
			size = 2 << (c - 0xdc)
		default: // 0xde, 0xdf: map 16/32
			size = 2 << (c - 0xde)
		}
		if size > 0 {
			if len(data)-i < size {
				return errTruncated
			}
			var n uint64
			switch size {
			case 1:
				n = uint64(data[i])
			case 2:
				n = uint64(binary.BigEndian.Uint16(data[i:]))
			default:
				n = uint64(binary.BigEndian.Uint32(data[i:]))
			}
			i += size
			switch {
			case c >= 0xdc && c <= 0xdd:
				children = n
			case c >= 0xde:
				children = 2 * n
			case extType:
				skip = 1 + n
			default:
				skip = n
			}
		}
		rest := uint64(len(data) - i)
		if skip > rest {
			return errTruncated
		}
		i += int(skip)
		if children > 0 {
			if children > uint64(len(data)-i) {
				return fmt.Errorf("container at offset %d declares %d values but only %d bytes follow", start, children, len(data)-i)
			}
			if len(pending) > MaxDepth {
				return fmt.Errorf("nesting deeper than %d", MaxDepth)
			}
			pending = append(pending, children)
		}
	}
	if i != len(data) {
		return fmt.Errorf("%d bytes left after the value", len(data)-i)
	}
	return nil
}
