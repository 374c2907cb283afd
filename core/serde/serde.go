// Package serde defines how kstreams turns typed keys and values into bytes
// and back, and provides the built-in codecs.
//
// A Serde[T] is used both on the wire (source and sink topics) and in state
// stores.
//
// # Topics and stores
//
// On topics, the built-in numbers are Kafka's wire format, what Java's
// serializers write, so that Go and Java applications read each other's
// records: Int16, Int32 and Int64 (and Int, as a long) are big-endian two's
// complement like ShortSerializer, IntegerSerializer and LongSerializer;
// Float32 and Float64 are IEEE 754 big-endian like FloatSerializer and
// DoubleSerializer; Time and Duration are int64 nanoseconds, written as
// Int64 writes them. In that form a negative number's bytes sort after the
// positive ones'.
//
// Stores need their keys' bytes to sort like the keys, so that range scans
// return keys in numeric order. The typed stores (package store) therefore
// encode keys and values with StoreForm, which turns the built-in Int*,
// Float*, Time and Duration serdes into their order-preserving forms
// (OrderedInt64 for Int64, and so on: big-endian with the sign bit flipped,
// or for floats all bits flipped when negative), and leaves any other serde
// as it is. A store's changelog holds the same bytes as the store. So
//
//	store.KeyValue("counts", serde.String, serde.Int64, supplier)
//
// scans its int64 keys in numeric order, while a sink with serde.Int64
// writes longs that Java's LongDeserializer reads. A serde of your own that
// builds a key from several parts, and needs the parts to sort as values,
// encodes them with the Ordered* serdes.
//
// The unsigned serdes (big-endian), Bool, String and Bytes are the same on
// topics and in stores. Earlier versions wrote the order-preserving form on
// topics too: read such topics with the Ordered* serdes.
//
// # Nil and tombstones
//
// Kafka distinguishes a null key or value from an empty one; a null value is
// a tombstone. kstreams maps a null (nil) input to the zero value of T:
// every Serde's Deserialize must return the zero value and a nil error for
// nil data. Serialize returns nil bytes (a Kafka null) only where T can hold
// "nothing": the Bytes serde for a nil slice, and add-on serdes for nil
// pointers. Record a tombstone by using a nil-able type ([]byte or a pointer)
// for the value.
package serde

import (
	"github.com/twmb/franz-go/pkg/kgo"
)

// Header is a Kafka record header. It is franz-go's own type, so headers
// pass between kstreams and kgo without copying.
type Header = kgo.RecordHeader

// Serde serializes and deserializes values of type T.
//
// Implementations must be safe for concurrent use: async processing modes
// call them from several goroutines.
type Serde[T any] interface {
	// Serialize appends the encoding of v to dst and returns the extended
	// slice. topic is the topic the bytes are written to (or the changelog
	// topic, for stores) and headers are the record's headers; schema-aware
	// formats use them, others ignore them.
	Serialize(dst []byte, topic string, headers []Header, v T) ([]byte, error)
	// Deserialize decodes data, read from topic with headers. It returns an
	// error, never panics, on malformed data. The result may alias data;
	// kstreams never reuses the memory of a record it handed to a
	// deserializer. For nil data it returns the zero value of T.
	Deserialize(topic string, headers []Header, data []byte) (T, error)
}

// Funcs adapts a pair of functions to a Serde. Either may be nil if the
// Serde is only used in one direction; calling the missing one returns an
// error.
type Funcs[T any] struct {
	// Ser appends the encoding of v to dst.
	Ser func(dst []byte, topic string, headers []Header, v T) ([]byte, error)
	// De decodes data.
	De func(topic string, headers []Header, data []byte) (T, error)
}

// Serialize calls f.Ser.
func (f Funcs[T]) Serialize(dst []byte, topic string, headers []Header, v T) ([]byte, error) {
	if f.Ser == nil {
		return dst, errNoDirection("serializer")
	}
	return f.Ser(dst, topic, headers, v)
}

// Deserialize calls f.De.
func (f Funcs[T]) Deserialize(topic string, headers []Header, data []byte) (T, error) {
	if f.De == nil {
		var zero T
		return zero, errNoDirection("deserializer")
	}
	return f.De(topic, headers, data)
}

type errNoDirection string

func (e errNoDirection) Error() string { return "serde: no " + string(e) + " set in serde.Funcs" }
