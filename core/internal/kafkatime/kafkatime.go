// Package kafkatime recovers the exact timestamps of records that franz-go's
// consumer garbles, and bounds the instants kstreams represents.
//
// franz-go (v1.22) turns a fetched record's timestamp, milliseconds since
// 1970, into a time.Time with time.Unix(0, ms*1e6). Past 2262-04-11 (or
// before 1677-09-21) the product overflows int64 and wraps: a record of
// 1 January 2300 comes out in 1715. The wrap loses only the top 6 bits of
// ms: 1e6 is 2^6·15625 and 15625 is odd, hence invertible modulo 2^64, so
// ms modulo 2^58 is recovered exactly; that is every timestamp within 4.5
// million years of 1970. A wrapped product is never a whole number of
// milliseconds (short of wrapping 15625 times), while every timestamp the
// consumer converts without overflow is: that tells them apart.
package kafkatime

import (
	"math"
	"time"
)

// Min and Max are the earliest and latest instants kstreams represents:
// stream time, windows and window stores keep instants as int64
// nanoseconds since 1970.
var (
	Min = time.Unix(0, math.MinInt64).UTC() // 1677-09-21T00:12:43.145224192Z
	Max = time.Unix(0, math.MaxInt64).UTC() // 2262-04-11T23:47:16.854775807Z
)

// InRange reports whether t is within [Min, Max].
func InRange(t time.Time) bool { return !t.Before(Min) && !t.After(Max) }

// inverse15625 is the inverse of 15625 modulo 2^64.
const inverse15625 uint64 = 0x790fb65668c26139

// Exact returns the record timestamp that franz-go's consumer turned into
// t. It is t itself unless the conversion overflowed; t is returned
// unchanged too when it cannot come from the consumer (out of the
// nanosecond range, or not a multiple of 64 ns), so Exact is idempotent
// and harmless on instants set by other means.
func Exact(t time.Time) time.Time {
	if !InRange(t) {
		return t
	}
	ns := t.UnixNano()
	if ns%1e6 == 0 || ns%64 != 0 {
		return t
	}
	// ns = ms·2^6·15625 - k·2^64, so ms·15625 ≡ ns/2^6 (mod 2^58).
	const mod = 1 << 58
	ms := int64(uint64(ns>>6) * inverse15625 % mod)
	if ms >= mod/2 {
		ms -= mod
	}
	return time.UnixMilli(ms)
}
