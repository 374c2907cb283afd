// Package window provides windowed aggregation over event time: window
// definitions, window keys, the stores of windowed state, and the
// aggregation processors.
//
// # Windows
//
//   - Tumbling(size) and Hopping(size, advance): fixed-size windows aligned
//     to the Unix epoch, [start, start+size).
//   - Hours(n, loc), Days(loc), Weeks(loc, first), Months(loc), Years(loc):
//     calendar windows on the wall clock of a time zone, exact across
//     daylight-saving changes (a day may be 23 or 25 hours, or start at
//     01:00 where midnight does not exist); see CalendarWindows. StartAt
//     moves their start on the wall clock: Days(loc).StartAt(18*time.Hour)
//     are trading days from 18:00 to 18:00.
//   - Sliding(maxDifference): Kafka Streams' sliding windows, one per
//     distinct set of records within the difference of each other.
//   - Session(gap): sessions of activity separated by gaps, merged when a
//     record bridges two.
//
// Every definition but sessions is a Windows, which says which windows
// contain an instant (WindowsAt).
//
// Each takes a grace period (Grace): a window accepts out-of-order records
// until stream time (the greatest timestamp of the records the aggregation
// has processed in its task) reaches its end plus the grace period; then it is closed, and records
// that would change only closed windows are late.
//
// # Aggregating
//
// An aggregation keeps its windows in a store described with NewStore (or
// NewSessionStore) on the backend of the user's choice, and is added to a
// topology with Aggregate, AggregateSessions, Count or CountSessions, which
// declare the store in the topology:
//
//	berlin, _ := time.LoadLocation("Europe/Berlin")
//	daily := window.NewStore("daily-usage", window.Days(berlin).Grace(10*time.Minute),
//		serde.String, usageSerde, memory.Supplier())
//	usage := window.Aggregate(readings, "daily", daily,
//		func() Usage { return Usage{} },                                // init
//		func(meter string, r Reading, u Usage) (Usage, error) { ... }, // add
//		func(k window.Key[string], u Usage) (Summary, error) { ... },  // result
//		window.EmitFinal())
//	kstreams.Sink(usage, "daily-out", "daily-usage", window.KeySerde(serde.String), summarySerde)
//
// The output is keyed by Key[K]: the record key and the window, with both
// its start and its end (calendar windows have variable length). By default
// every update of a window is forwarded; EmitFinal forwards each window
// exactly once, when it closes. Late records are dropped and counted by
// default, or sent to a side output (LateRecords) or a dead-letter topic
// (LateToTopic).
//
// Windows are kept for the store's retention (by default the longest
// window plus the grace period) and then deleted in whole segments with
// range deletions, so state does not grow without bound.
//
// Go 1.26 has no method type parameters, so aggregations are functions
// taking the parent node, like the builder functions of package kstreams,
// and a window definition's methods (Grace) return the same type.
package window
