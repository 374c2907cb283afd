package window

import (
	"fmt"
	"sync"
	"time"
)

// CalendarWindows are tumbling windows aligned to the wall clock of a time
// zone: N hours, days, weeks, months or years. Create them with Hours, Days,
// Weeks, Months or Years.
//
// A window starts at the first instant at which the zone's wall clock reads
// its label (a date, or a date and hour) or later, and ends where the next
// window starts. So windows are exact across daylight-saving and other
// offset changes, whatever their size:
//
//   - a day on which clocks spring forward by an hour is 23 hours long, one
//     on which they fall back 25 hours (23.5 and 24.5 hours in
//     Australia/Lord_Howe, whose shift is 30 minutes);
//   - a day whose midnight does not exist (clocks jump from 00:00 to 01:00,
//     as in America/Havana) starts at 01:00;
//   - a day whose midnight occurs twice (clocks fall back from 01:00 to
//     00:00) starts at the first one; when clocks fall back from 24:00 to
//     23:00 (America/Santiago), the repeated hour belongs to the earlier day;
//   - when clocks fall back, the wall-clock times between the new reading
//     and the old one happen twice. An instant belongs to the window in
//     progress, and a window lasts until the clock first reads the start
//     of the next one; so the window in progress when clocks fall back
//     also covers the repeated times after it, including those that read
//     as an earlier window's. Where clocks fall back by one hour at the top
//     of an hour, the hourly window of the repeated hour covers both of its
//     occurrences (two hours long). Antarctica/Troll falls back by two
//     hours, from 03:00 to 01:00: there the window of hour 02 covers 02:00
//     to 03:00 and then 01:00 to 03:00 again (three hours long), and the
//     window of hour 01 only the first 01:00 to 02:00 (one hour);
//   - a window all of whose wall-clock times are skipped by a
//     spring-forward (hour 02 where clocks jump from 02:00 to 03:00) has no
//     instant: WindowAt never returns it, and Window returns it empty
//     (Start equals End).
//
// StartAt moves where windows start on the wall clock: a trading day from
// 18:00 to 18:00, a week from Sunday 18:00, a month from the 15th; the
// rules above hold for the moved starts (the 18:00-to-18:00 day holding a
// spring-forward by an hour is 23 hours long).
//
// Window bounds are in the zone (Window.Start.Location() is it).
type CalendarWindows struct {
	unit   calUnit
	n      int
	loc    *time.Location
	first  time.Weekday
	offset time.Duration // wall-clock start of a window after its label
	grace  time.Duration
	max    time.Duration
	err    error
}

type calUnit uint8

const (
	unitHours calUnit = iota + 1
	unitDays
	unitWeeks
	unitMonths
	unitYears
)

// Hours returns windows of n wall-clock hours in loc, starting at local
// midnight and every n hours after it; n must divide 24. In zones whose
// offset is a whole number of hours they are n hours long except where the
// offset changes; elsewhere (Asia/Kolkata, +05:30) they still start on the
// local hour.
func Hours(n int, loc *time.Location) CalendarWindows {
	w := newCalendar(unitHours, n, loc, time.Monday)
	if w.err == nil && (n <= 0 || 24%n != 0) {
		w.err = fmt.Errorf("window: calendar hours must divide 24, got %d", n)
	}
	return w
}

// Days returns windows of one local calendar day in loc.
func Days(loc *time.Location) CalendarWindows { return newCalendar(unitDays, 1, loc, time.Monday) }

// Weeks returns windows of one local calendar week in loc, starting on
// first (time.Monday for ISO 8601 weeks, time.Sunday in the United States).
func Weeks(loc *time.Location, first time.Weekday) CalendarWindows {
	w := newCalendar(unitWeeks, 1, loc, first)
	if w.err == nil && (first < time.Sunday || first > time.Saturday) {
		w.err = fmt.Errorf("window: invalid first weekday %d", first)
	}
	return w
}

// Months returns windows of one local calendar month in loc.
func Months(loc *time.Location) CalendarWindows { return newCalendar(unitMonths, 1, loc, time.Monday) }

// Years returns windows of one local calendar year in loc.
func Years(loc *time.Location) CalendarWindows { return newCalendar(unitYears, 1, loc, time.Monday) }

func newCalendar(u calUnit, n int, loc *time.Location, first time.Weekday) CalendarWindows {
	w := CalendarWindows{unit: u, n: n, loc: loc, first: first}
	if loc == nil {
		w.err = errNilLocation
		return w
	}
	if u == unitHours && (n <= 0 || 24%n != 0) {
		return w // reported by Hours
	}
	w.max = w.nominalMax() + maxOffsetDrop(loc, w.nominalMax())
	return w
}

// Grace returns w with the grace period d.
func (w CalendarWindows) Grace(d time.Duration) CalendarWindows {
	w.grace = d
	if d < 0 && w.err == nil {
		w.err = fmt.Errorf("window: grace period must not be negative, got %v", d)
	}
	return w
}

// StartAt returns w with every window starting d later on the wall clock
// (earlier, for a negative d) than its calendar unit does: the window
// labelled L (see Window) covers the wall-clock times from L+d to the next
// label+d. The shift is in wall-clock time, so windows stay exact across
// daylight-saving changes. For example, in loc:
//
//	Days(loc).StartAt(18 * time.Hour)               // 18:00 to 18:00, labelled by the date they start on
//	Days(loc).StartAt(-6 * time.Hour)               // 18:00 to 18:00, labelled by the date they end on
//	Weeks(loc, time.Sunday).StartAt(18 * time.Hour) // Sunday 18:00 to Sunday 18:00
//	Months(loc).StartAt(14 * 24 * time.Hour)        // the 15th 00:00 to the 15th 00:00
//	Hours(8, loc).StartAt(6 * time.Hour)            // 06:00-14:00, 14:00-22:00, 22:00-06:00
//
// d is a whole number of seconds, shorter than the shortest window of the
// unit: n hours for Hours(n, loc), 24 hours for days, 7 days for weeks, 28
// days for months (so a month starts on day 1 to 28), 365 days for years.
// A start the clocks skip (02:30 where they jump from 02:00 to 03:00) is
// the instant of the jump.
func (w CalendarWindows) StartAt(d time.Duration) CalendarWindows {
	w.offset = d
	if w.err == nil {
		switch limit := w.shortest(); {
		case d <= -limit || d >= limit:
			w.err = fmt.Errorf("window: calendar windows of %s must start less than %v from their label, got %v", w.unitName(), limit, d)
		case d%time.Second != 0:
			w.err = fmt.Errorf("window: calendar windows must start a whole number of seconds from their label, got %v", d)
		}
	}
	return w
}

// shortest is the shortest wall-clock span of a window.
func (w CalendarWindows) shortest() time.Duration {
	const day = 24 * time.Hour
	switch w.unit {
	case unitHours:
		return time.Duration(w.n) * time.Hour
	case unitDays:
		return day
	case unitWeeks:
		return 7 * day
	case unitMonths:
		return 28 * day
	default:
		return 365 * day
	}
}

// Location returns the windows' time zone.
func (w CalendarWindows) Location() *time.Location { return w.loc }

// GracePeriod implements Windows.
func (w CalendarWindows) GracePeriod() time.Duration { return w.grace }

// MaxSize implements Windows: the longest window in the zone between the
// years 1900 and 2100: 24h plus the largest drop of the zone's UTC offset
// for a day (25h in Europe/Berlin).
func (w CalendarWindows) MaxSize() time.Duration { return w.max }

// Validate implements Windows.
func (w CalendarWindows) Validate() error { return w.err }

func (w CalendarWindows) retention() time.Duration { return w.max + w.grace }

// String implements Windows.
func (w CalendarWindows) String() string {
	name := "?"
	if w.loc != nil {
		name = w.loc.String()
	}
	unit := w.unitName()
	if w.offset > 0 {
		unit += " starting +" + w.offset.String()
	} else if w.offset < 0 {
		unit += " starting " + w.offset.String()
	}
	return fmt.Sprintf("calendar(%s in %s, grace %v)", unit, name, w.grace)
}

func (w CalendarWindows) unitName() string {
	switch w.unit {
	case unitHours:
		return fmt.Sprintf("%d hours", w.n)
	case unitDays:
		return "days"
	case unitWeeks:
		return "weeks from " + w.first.String()
	case unitMonths:
		return "months"
	case unitYears:
		return "years"
	}
	return "?"
}

// nominalMax is the longest wall-clock span of a window.
func (w CalendarWindows) nominalMax() time.Duration {
	const day = 24 * time.Hour
	switch w.unit {
	case unitHours:
		return time.Duration(w.n) * time.Hour
	case unitDays:
		return day
	case unitWeeks:
		return 7 * day
	case unitMonths:
		return 31 * day
	default:
		return 366 * day
	}
}

// label returns the wall-clock label (as a UTC time holding the local date
// and time) of the window whose label range holds wall, and the next label.
func (w CalendarWindows) label(wall time.Time) (lo, hi time.Time) {
	y, m, d := wall.Date()
	switch w.unit {
	case unitHours:
		h := wall.Hour()
		lo = time.Date(y, m, d, h-h%w.n, 0, 0, 0, time.UTC)
	case unitDays:
		lo = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	case unitWeeks:
		back := (int(wall.Weekday()) - int(w.first) + 7) % 7
		lo = time.Date(y, m, d-back, 0, 0, 0, 0, time.UTC)
	case unitMonths:
		lo = time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	default:
		lo = time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return lo, w.next(lo)
}

// next returns the label after lo.
func (w CalendarWindows) next(lo time.Time) time.Time {
	switch w.unit {
	case unitHours:
		return lo.Add(time.Duration(w.n) * time.Hour) // UTC labels: no offset changes
	case unitDays:
		return lo.AddDate(0, 0, 1)
	case unitWeeks:
		return lo.AddDate(0, 0, 7)
	case unitMonths:
		return lo.AddDate(0, 1, 0)
	default:
		return lo.AddDate(1, 0, 0)
	}
}

// reach returns the first instant at which the wall clock reads the start
// of the window labelled label, or later.
func (w CalendarWindows) reach(label time.Time) time.Time {
	return firstReach(w.loc, label.Add(w.offset))
}

// WindowAt returns the window that contains t.
func (w CalendarWindows) WindowAt(t time.Time) Window {
	if w.err != nil {
		return Window{}
	}
	local := t.In(w.loc)
	wall := time.Date(local.Year(), local.Month(), local.Day(), local.Hour(), local.Minute(), local.Second(), local.Nanosecond(), time.UTC)
	lo, hi := w.label(wall.Add(-w.offset))
	start, end := w.reach(lo), w.reach(hi)
	// The wall clock reading t is within [lo, hi) shifted by the offset,
	// so the clock reached the window's start at t or earlier. It may also
	// have reached the next start before t and then been set back below it
	// (a fall-back across a window boundary): then t belongs to a later
	// window.
	for !t.Before(end) {
		lo, hi = hi, w.next(hi)
		start, end = end, w.reach(hi)
	}
	return Window{Start: start.In(w.loc), End: end.In(w.loc)}
}

// WindowsAt implements Windows: the one window that contains t (none for
// an invalid definition).
func (w CalendarWindows) WindowsAt(t time.Time) []Window {
	return w.AppendWindowsAt(nil, t)
}

// AppendWindowsAt appends the window that contains t to dst and returns
// the extended slice.
func (w CalendarWindows) AppendWindowsAt(dst []Window, t time.Time) []Window {
	if w.err != nil {
		return dst
	}
	return append(dst, w.WindowAt(t))
}

// Window returns the window labelled by the local date and hour of label's
// fields (its location is ignored): Days(loc).Window(time.Date(2026, 3, 29,
// 0, 0, 0, 0, time.UTC)) is 29 March 2026 in loc. Fields below the window's
// unit are ignored. With StartAt(d), the window labelled L starts at L+d
// on the wall clock. For a label whose whole window is skipped by a
// spring-forward (an hour in Hours(1, loc)), Start equals End.
func (w CalendarWindows) Window(label time.Time) Window {
	if w.err != nil {
		return Window{}
	}
	wall := time.Date(label.Year(), label.Month(), label.Day(), label.Hour(), 0, 0, 0, time.UTC)
	lo, hi := w.label(wall)
	return Window{Start: w.reach(lo).In(w.loc), End: w.reach(hi).In(w.loc)}
}

// firstReach returns the first instant at which the wall clock of loc reads
// label (a UTC time holding a local date and time) or later. Where the
// clock jumps over label, that is the instant of the jump.
func firstReach(loc *time.Location, label time.Time) time.Time {
	lw := label.Unix() // wall-clock seconds; labels are whole seconds
	// Offsets are far less than 3 days, so before this instant the clock
	// reads less than label.
	t := time.Unix(lw-3*86400, 0).In(loc)
	for {
		_, off := t.Zone()
		end := zoneEnd(t)
		// In [t, end) the offset is off and the clock reads from
		// t+off upwards.
		if t.Unix()+int64(off) >= lw {
			return t // the clock jumped over label at t
		}
		if cand := lw - int64(off); end.IsZero() || cand < end.Unix() {
			return time.Unix(cand, 0).In(loc)
		}
		t = end
	}
}

// zoneEnd returns the end of the period of constant UTC offset holding t
// (in its location), or the zero Time if the offset never changes again.
func zoneEnd(t time.Time) time.Time {
	_, end := t.ZoneBounds()
	if end.IsZero() || end.After(t) {
		return end
	}
	// Past the end of a zone's transition table, Go's ZoneBounds reports
	// periods split at year ends, and in a leap year an empty one on 31
	// December (Go 1.26). No zone changes its offset there: look a day
	// ahead, and search for the change should there be one.
	_, off := t.Zone()
	hi := t.Add(24 * time.Hour)
	if _, o := hi.Zone(); o == off {
		return hi
	}
	lo := t
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2).Truncate(time.Second)
		if _, o := mid.Zone(); o == off {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// dropCache memoizes maxOffsetDrop per location and span: scanning a
// zone's history costs milliseconds.
var dropCache sync.Map // dropKey -> time.Duration

type dropKey struct {
	loc  *time.Location
	span time.Duration
}

// maxOffsetDrop returns the greatest decrease of loc's UTC offset between
// two instants at most span (plus that decrease) apart, for instants from
// 1900 to 2100: the most a window of wall-clock length span can exceed it.
func maxOffsetDrop(loc *time.Location, span time.Duration) time.Duration {
	k := dropKey{loc, span}
	if d, ok := dropCache.Load(k); ok {
		return d.(time.Duration)
	}
	d := scanOffsetDrop(loc, span)
	dropCache.Store(k, d)
	return d
}

func scanOffsetDrop(loc *time.Location, span time.Duration) time.Duration {
	type period struct {
		start int64
		off   int
	}
	var ps []period
	minOff, maxOff := 0, 0
	t := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).In(loc)
	limit := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; t.Before(limit) && i < 100000; i++ {
		_, off := t.Zone()
		if len(ps) == 0 {
			minOff, maxOff = off, off
		}
		minOff, maxOff = min(minOff, off), max(maxOff, off)
		ps = append(ps, period{t.Unix(), off})
		end := zoneEnd(t)
		if end.IsZero() {
			break
		}
		t = end
	}
	window := int64(span/time.Second) + int64(maxOff-minOff)
	drop := 0
	for i := range ps {
		// A window starting in period i (so before period i+1 starts)
		// and ending in period j.
		var next int64
		if i+1 < len(ps) {
			next = ps[i+1].start
		} else {
			break
		}
		for j := i + 1; j < len(ps) && ps[j].start-next < window; j++ {
			drop = max(drop, ps[i].off-ps[j].off)
		}
	}
	return time.Duration(drop) * time.Second
}
