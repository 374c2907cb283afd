package window

import (
	"errors"
	"fmt"
	"time"
)

// Windows is a window definition for Aggregate and Count: FixedWindows
// (Tumbling, Hopping), CalendarWindows (Hours, Days, Weeks, Months, Years)
// or SlidingWindows. Session windows merge, so they have their own
// functions (AggregateSessions, CountSessions).
//
// A window definition is a value: methods like Grace return a modified copy.
type Windows interface {
	// GracePeriod returns how long after a window's end it still accepts
	// out-of-order records. A window closes when stream time reaches its
	// end plus the grace period; records for closed windows are late.
	GracePeriod() time.Duration
	// MaxSize returns the greatest length a window can have. A store's
	// retention is at least MaxSize plus the grace period.
	MaxSize() time.Duration
	// Validate reports an invalid definition (a non-positive size, say).
	Validate() error
	// String describes the definition.
	String() string
	// WindowsAt returns the windows that contain t, by start time: one
	// for tumbling and calendar windows, size/advance for hopping windows.
	// Sliding windows exist only where records make them; for them it
	// returns the one window every record at t belongs to, [t-d, t] (see
	// SlidingWindows.WindowsAt). It returns none for an invalid definition.
	WindowsAt(t time.Time) []Window

	// retention is the store retention the definition needs.
	retention() time.Duration
}

// closeSlack is added to the close time of windows whose end is included
// (sliding windows and sessions): such a window can still change while
// stream time equals its end plus the grace period.
const closeSlack = time.Nanosecond

// FixedWindows are windows of one fixed size starting at multiples of an
// advance since the Unix epoch: tumbling windows when the advance equals the
// size (each instant in exactly one window), hopping windows when it is
// smaller (each instant in size/advance windows). Windows are half-open,
// [start, start+size). Create them with Tumbling or Hopping.
type FixedWindows struct {
	size, advance, grace time.Duration
	err                  error
}

// Tumbling returns non-overlapping windows of the given size, aligned to
// the Unix epoch (so hourly windows start on the hour, UTC), with no grace
// period. For windows aligned to a time zone's wall clock (days, or hours in
// a zone whose offset is not a whole number of hours) use the calendar
// windows.
func Tumbling(size time.Duration) FixedWindows {
	return Hopping(size, size)
}

// Hopping returns windows of the given size starting every advance (which
// must be positive and at most size), aligned to the Unix epoch, with no
// grace period. A record belongs to every window that contains its
// timestamp.
func Hopping(size, advance time.Duration) FixedWindows {
	w := FixedWindows{size: size, advance: advance}
	switch {
	case size <= 0:
		w.err = fmt.Errorf("window: size must be positive, got %v", size)
	case advance <= 0 || advance > size:
		w.err = fmt.Errorf("window: advance must be in (0, size=%v], got %v", size, advance)
	}
	return w
}

// Grace returns w with the grace period d: windows accept out-of-order
// records until stream time reaches their end plus d.
func (w FixedWindows) Grace(d time.Duration) FixedWindows {
	w.grace = d
	if d < 0 && w.err == nil {
		w.err = fmt.Errorf("window: grace period must not be negative, got %v", d)
	}
	return w
}

// Size returns the windows' size.
func (w FixedWindows) Size() time.Duration { return w.size }

// Advance returns the distance between the starts of consecutive windows.
func (w FixedWindows) Advance() time.Duration { return w.advance }

// GracePeriod implements Windows.
func (w FixedWindows) GracePeriod() time.Duration { return w.grace }

// MaxSize implements Windows: the size.
func (w FixedWindows) MaxSize() time.Duration { return w.size }

// Validate implements Windows.
func (w FixedWindows) Validate() error { return w.err }

func (w FixedWindows) retention() time.Duration { return w.size + w.grace }

// String implements Windows.
func (w FixedWindows) String() string {
	if w.advance == w.size {
		return fmt.Sprintf("tumbling(%v, grace %v)", w.size, w.grace)
	}
	return fmt.Sprintf("hopping(%v every %v, grace %v)", w.size, w.advance, w.grace)
}

// floorDiv returns floor(a / b) for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// WindowsAt implements Windows: the windows that contain t, by start
// time, in UTC.
func (w FixedWindows) WindowsAt(t time.Time) []Window {
	return w.AppendWindowsAt(nil, t)
}

// AppendWindowsAt appends the windows that contain t to dst, by start
// time, and returns the extended slice.
func (w FixedWindows) AppendWindowsAt(dst []Window, t time.Time) []Window {
	if w.err != nil {
		return dst
	}
	ts, size, adv := t.UnixNano(), int64(w.size), int64(w.advance)
	last := floorDiv(ts, adv) * adv // the latest start <= ts
	first := last
	for first-adv > ts-size {
		first -= adv
	}
	for s := first; s <= last; s += adv {
		dst = append(dst, Window{Start: time.Unix(0, s).UTC(), End: time.Unix(0, s+size).UTC()})
	}
	return dst
}

// SlidingWindows are the sliding windows of Kafka Streams: a window
// [start, start+difference], both bounds included, exists for each distinct
// set of records of a key whose timestamps differ by at most the time
// difference; windows holding no record do not exist. A record at t creates
// (or updates) the window ending at t, the window starting just after t (if
// later records fall into it), and updates every window containing t. The
// aggregation reads stored windows to do so, so the store keeps twice the
// time difference plus the grace period. Create them with Sliding.
type SlidingWindows struct {
	diff, grace time.Duration
	err         error
}

// Sliding returns sliding windows for records at most maxDifference apart,
// with no grace period.
func Sliding(maxDifference time.Duration) SlidingWindows {
	w := SlidingWindows{diff: maxDifference}
	if maxDifference <= 0 {
		w.err = fmt.Errorf("window: sliding time difference must be positive, got %v", maxDifference)
	}
	return w
}

// Grace returns w with the grace period d.
func (w SlidingWindows) Grace(d time.Duration) SlidingWindows {
	w.grace = d
	if d < 0 && w.err == nil {
		w.err = fmt.Errorf("window: grace period must not be negative, got %v", d)
	}
	return w
}

// TimeDifference returns the greatest difference between the timestamps of
// records in one window.
func (w SlidingWindows) TimeDifference() time.Duration { return w.diff }

// GracePeriod implements Windows.
func (w SlidingWindows) GracePeriod() time.Duration { return w.grace }

// MaxSize implements Windows: the time difference.
func (w SlidingWindows) MaxSize() time.Duration { return w.diff }

// Validate implements Windows.
func (w SlidingWindows) Validate() error { return w.err }

// retention: a new record's left window copies the aggregate of a window
// that ended up to one time difference before it, so windows are read until
// twice the difference (plus grace) after their start.
func (w SlidingWindows) retention() time.Duration { return 2*w.diff + w.grace + 2*closeSlack }

// WindowsAt implements Windows. Sliding windows depend on the records:
// the windows that exist and contain t are those of records within the
// time difference d of t. The one that contains t whatever the records is
// the window ending at t, [t-d, t], which a record at t creates (or
// updates): WindowsAt returns it, in UTC.
func (w SlidingWindows) WindowsAt(t time.Time) []Window {
	return w.AppendWindowsAt(nil, t)
}

// AppendWindowsAt appends the window that WindowsAt returns to dst and
// returns the extended slice.
func (w SlidingWindows) AppendWindowsAt(dst []Window, t time.Time) []Window {
	if w.err != nil {
		return dst
	}
	return append(dst, Window{Start: t.Add(-w.diff).UTC(), End: t.UTC()})
}

// String implements Windows.
func (w SlidingWindows) String() string {
	return fmt.Sprintf("sliding(%v, grace %v)", w.diff, w.grace)
}

// SessionWindows group a key's records into sessions: a record within the
// inactivity gap of a session (at most gap before its first record or after
// its last) joins it, and a record that bridges two sessions merges them.
// A session is [first record, last record], both included. It closes when
// stream time passes its last record plus the gap plus the grace period.
// Create them with Session; aggregate with AggregateSessions.
type SessionWindows struct {
	gap, grace time.Duration
	err        error
}

// Session returns session windows with the given inactivity gap and no
// grace period.
func Session(gap time.Duration) SessionWindows {
	w := SessionWindows{gap: gap}
	if gap <= 0 {
		w.err = fmt.Errorf("window: session inactivity gap must be positive, got %v", gap)
	}
	return w
}

// Grace returns w with the grace period d.
func (w SessionWindows) Grace(d time.Duration) SessionWindows {
	w.grace = d
	if d < 0 && w.err == nil {
		w.err = fmt.Errorf("window: grace period must not be negative, got %v", d)
	}
	return w
}

// Gap returns the inactivity gap.
func (w SessionWindows) Gap() time.Duration { return w.gap }

// GracePeriod returns the grace period.
func (w SessionWindows) GracePeriod() time.Duration { return w.grace }

// Validate reports an invalid definition.
func (w SessionWindows) Validate() error { return w.err }

// String describes the definition.
func (w SessionWindows) String() string {
	return fmt.Sprintf("session(gap %v, grace %v)", w.gap, w.grace)
}

// retention: a record is late if it would merge with a closed session, so
// sessions are kept, after their end, for twice the gap plus the grace
// period: long enough to be found by any record that is not late itself.
func (w SessionWindows) retention() time.Duration { return 2*w.gap + w.grace + 2*closeSlack }

// closeAt returns the stream time at which session s closes.
func (w SessionWindows) closeAt(s Window) int64 {
	return s.End.UnixNano() + int64(w.gap+w.grace+closeSlack)
}

var errNilLocation = errors.New("window: calendar windows need a time zone (*time.Location), got nil")
