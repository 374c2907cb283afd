package bigtable

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Row keys. Every row of one store instance (application × store ×
// partition) starts with the instance's prefix:
//
//	escape(app) 0x00 0x01  escape(store) 0x00 0x01  partition (4 bytes, big-endian)
//
// where escape doubles as 0x00 → 0x00 0xff. The encoding is prefix-free (no
// instance's prefix starts another's) and order-preserving, so an instance's
// rows form one contiguous row range. After the prefix comes one byte:
//
//	prefix 'd' key   a data row: the store key, unescaped (it is last)
//	prefix 'm'       the instance's meta row (owner epoch, offset, versions)
//
// Bigtable orders rows by their bytes, as store.Backend orders keys
// (bytes.Compare), so Range(lo, hi) is the row range [prefix 'd' lo,
// prefix 'd' hi), and a nil hi is the end of the data rows, prefix 'e'.

const (
	kindData = 'd'
	kindMeta = 'm'
)

// maxRowKey is Bigtable's limit on the length of a row key.
const maxRowKey = 4096

// instancePrefix returns the row-key prefix of one store instance.
func instancePrefix(app, storeName string, partition int32) []byte {
	p := make([]byte, 0, len(app)+len(storeName)+8)
	p = appendEscaped(p, app)
	p = appendEscaped(p, storeName)
	return binary.BigEndian.AppendUint32(p, uint32(partition))
}

func appendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		dst = append(dst, s[i])
		if s[i] == 0x00 {
			dst = append(dst, 0xff)
		}
	}
	return append(dst, 0x00, 0x01)
}

// dataPrefix returns the prefix of an instance's data rows.
func dataPrefix(instance []byte) []byte {
	return append(append([]byte(nil), instance...), kindData)
}

// metaRowKey returns the key of an instance's meta row.
func metaRowKey(instance []byte) string {
	return string(append(append([]byte(nil), instance...), kindMeta))
}

// dataRowKey returns the row key of a store key.
func dataRowKey(dataPrefix, key []byte) string {
	b := make([]byte, 0, len(dataPrefix)+len(key))
	return string(append(append(b, dataPrefix...), key...))
}

// errBadRowKey is returned when a row key does not decode.
var errBadRowKey = errors.New("not a kstreams row key")

// decodeRowKey splits a row key into its parts; kind is kindData or
// kindMeta, and key is the store key of a data row.
func decodeRowKey(row []byte) (app, storeName string, partition int32, kind byte, key []byte, err error) {
	rest := row
	var parts [2]string
	for i := range parts {
		var s []byte
		for {
			if len(rest) < 2 {
				return "", "", 0, 0, nil, errBadRowKey
			}
			if rest[0] != 0x00 {
				s = append(s, rest[0])
				rest = rest[1:]
				continue
			}
			switch rest[1] {
			case 0xff:
				s = append(s, 0x00)
				rest = rest[2:]
				continue
			case 0x01:
				rest = rest[2:]
			default:
				return "", "", 0, 0, nil, errBadRowKey
			}
			break
		}
		parts[i] = string(s)
	}
	if len(rest) < 5 {
		return "", "", 0, 0, nil, errBadRowKey
	}
	partition = int32(binary.BigEndian.Uint32(rest))
	kind = rest[4]
	switch kind {
	case kindData:
		return parts[0], parts[1], partition, kind, rest[5:], nil
	case kindMeta:
		if len(rest) != 5 {
			return "", "", 0, 0, nil, errBadRowKey
		}
		return parts[0], parts[1], partition, kind, nil, nil
	}
	return "", "", 0, 0, nil, fmt.Errorf("%w: kind %q", errBadRowKey, kind)
}

// Versions. Each flush of an owner writes its cells at one version: the
// owner's epoch in the high bits, the owner's flush count in the low ones.
// Versions of a newer owner are above every version of an older one. The
// cell timestamp is the version in milliseconds (Bigtable tables accept
// millisecond-aligned timestamps).
const (
	seqBits  = 28
	maxSeq   = 1<<seqBits - 1
	maxEpoch = 1<<(53-seqBits) - 1 // versions stay below 2^53, timestamps below 2^63
)

func version(epoch int64, seq uint64) uint64 { return uint64(epoch)<<seqBits | seq }

func versionTimestamp(v uint64) int64 { return int64(v) * 1000 }

func timestampVersion(ts int64) uint64 { return uint64(ts / 1000) }

// Cell values carry a tag byte: a value or a deletion (a tombstone, needed
// until the flush that deletes is committed, see doc.go).
const (
	tagDeleted = 0x00
	tagValue   = 0x01
)
