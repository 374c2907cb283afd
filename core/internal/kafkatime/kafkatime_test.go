package kafkatime

import (
	"math/rand/v2"
	"testing"
	"time"
)

// franzTime converts milliseconds as franz-go v1.22's consumer does
// (timeFromMillis in pkg/kgo/source.go), overflow included.
func franzTime(ms int64) time.Time { return time.Unix(0, ms*1e6) }

func TestExactRecoversWrappedTimestamps(t *testing.T) {
	y2300 := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := franzTime(y2300.UnixMilli()); got.Year() > 1970 {
		t.Fatalf("the conversion being worked around gives %v for 2300, not a date before 1970", got)
	}
	for _, want := range []time.Time{
		y2300,
		time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC),
		time.Date(1500, 6, 1, 12, 0, 0, 1e6, time.UTC),
		Max.Truncate(time.Millisecond).Add(time.Millisecond), // the first millisecond past the range
		time.UnixMilli(1<<57 - 1),
		time.UnixMilli(-1 << 57),
	} {
		if got := Exact(franzTime(want.UnixMilli())); !got.Equal(want) {
			t.Errorf("Exact(franz-go's %v) = %v", want, got)
		}
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		ms := rnd.Int64N(1<<58) - 1<<57
		if got := Exact(franzTime(ms)); got.UnixMilli() != ms || got.Nanosecond()%1e6 != 0 {
			t.Fatalf("Exact(franz-go's %d ms) = %v (%d ms)", ms, got, got.UnixMilli())
		}
	}
}

func TestExactKeepsOtherInstants(t *testing.T) {
	for _, tt := range []time.Time{
		time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC),
		time.UnixMilli(-1), // a record without a timestamp
		time.Unix(0, 0),
		time.Date(1816, 1, 1, 0, 0, 0, 0, time.UTC),         // a real 1816, whole milliseconds
		time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC), // sub-millisecond: not from the consumer
		time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC),         // already exact
		{},
	} {
		if got := Exact(tt); !got.Equal(tt) {
			t.Errorf("Exact(%v) = %v, want it unchanged", tt, got)
		}
	}
	if !InRange(Min) || !InRange(Max) || InRange(Max.Add(1)) || InRange(Min.Add(-1)) || InRange(time.Time{}) {
		t.Error("InRange disagrees with [Min, Max]")
	}
}
