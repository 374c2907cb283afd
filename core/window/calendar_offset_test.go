package window_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/window"
)

// Europe/Berlin in 2026: clocks go forward at 02:00 CET on 29 March
// (01:00 UTC) and back at 03:00 CEST on 25 October (01:00 UTC).
func TestCalendarStartAtBerlin(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	const h = time.Hour

	// Trading days from 18:00 to 18:00: the one holding the spring-forward
	// is 23 hours long, the one holding the fall-back 25.
	trading := window.Days(berlin).StartAt(18 * h)
	wantWindow(t, "trading day of 29 March", trading.WindowAt(utc("2026-03-29T12:00:00Z")), "2026-03-28T18:00:00+01:00", "2026-03-29T18:00:00+02:00", 23*h)
	wantWindow(t, "trading day from 29 March", trading.WindowAt(utc("2026-03-29T18:00:00+02:00")), "2026-03-29T18:00:00+02:00", "2026-03-30T18:00:00+02:00", 24*h)
	wantWindow(t, "trading day of 25 October", trading.WindowAt(utc("2026-10-25T01:30:00Z")), "2026-10-24T18:00:00+02:00", "2026-10-25T18:00:00+01:00", 25*h)
	wantWindow(t, "label 28 March", trading.Window(time.Date(2026, 3, 28, 0, 0, 0, 0, time.UTC)), "2026-03-28T18:00:00+01:00", "2026-03-29T18:00:00+02:00", 23*h)
	// A negative start labels them by the date they end on.
	byEnd := window.Days(berlin).StartAt(-6 * h)
	wantWindow(t, "label 29 March, ending then", byEnd.Window(time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)), "2026-03-28T18:00:00+01:00", "2026-03-29T18:00:00+02:00", 23*h)
	if a, b := byEnd.WindowAt(utc("2026-03-29T12:00:00Z")), trading.WindowAt(utc("2026-03-29T12:00:00Z")); a != b {
		t.Errorf("StartAt(-6h) and StartAt(18h) disagree: %v and %v", a, b)
	}
	countWindows(t, trading, utc("2026-01-01T18:00:00+01:00"), utc("2027-01-01T18:00:00+01:00"), 365)

	// A start the clocks skip is the instant of the jump: 02:30 on 29 March.
	skipped := window.Days(berlin).StartAt(2*h + 30*time.Minute)
	wantWindow(t, "02:30 day of 28 March", skipped.WindowAt(utc("2026-03-28T12:00:00Z")), "2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", 23*h+30*time.Minute)
	wantWindow(t, "02:30 day of 29 March", skipped.WindowAt(utc("2026-03-29T12:00:00Z")), "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00", 23*h+30*time.Minute)

	// Weeks from Sunday 18:00.
	weeks := window.Weeks(berlin, time.Sunday).StartAt(18 * h)
	wantWindow(t, "week to Sunday 29 March 18:00", weeks.WindowAt(utc("2026-03-29T12:00:00Z")), "2026-03-22T18:00:00+01:00", "2026-03-29T18:00:00+02:00", 167*h)
	wantWindow(t, "week from Sunday 29 March 18:00", weeks.WindowAt(utc("2026-03-30T12:00:00Z")), "2026-03-29T18:00:00+02:00", "2026-04-05T18:00:00+02:00", 168*h)
	countWindows(t, weeks, utc("2025-12-28T18:00:00+01:00"), utc("2027-01-03T18:00:00+01:00"), 53)

	// Months from the 15th.
	months := window.Months(berlin).StartAt(14 * 24 * h)
	wantWindow(t, "month from 15 March", months.WindowAt(utc("2026-03-20T00:00:00Z")), "2026-03-15T00:00:00+01:00", "2026-04-15T00:00:00+02:00", 743*h)
	wantWindow(t, "month to 15 March", months.WindowAt(utc("2026-03-14T00:00:00Z")), "2026-02-15T00:00:00+01:00", "2026-03-15T00:00:00+01:00", 28*24*h)
	wantWindow(t, "month from 15 October", months.WindowAt(utc("2026-10-20T00:00:00Z")), "2026-10-15T00:00:00+02:00", "2026-11-15T00:00:00+01:00", 745*h)
	countWindows(t, months, utc("2026-01-15T00:00:00+01:00"), utc("2027-01-15T00:00:00+01:00"), 12)

	// Eight-hour shifts from 06:00: the night shift of 28-29 March is 7 hours.
	shifts := window.Hours(8, berlin).StartAt(6 * h)
	wantWindow(t, "night shift", shifts.WindowAt(utc("2026-03-29T00:30:00Z")), "2026-03-28T22:00:00+01:00", "2026-03-29T06:00:00+02:00", 7*h)
	wantWindow(t, "day shift", shifts.WindowAt(utc("2026-03-29T10:00:00Z")), "2026-03-29T06:00:00+02:00", "2026-03-29T14:00:00+02:00", 8*h)
	wantWindow(t, "label 14:00", shifts.Window(time.Date(2026, 3, 29, 14, 0, 0, 0, time.UTC)), "2026-03-29T14:00:00+02:00", "2026-03-29T22:00:00+02:00", 8*h)
	countWindows(t, shifts, utc("2026-10-24T22:00:00+02:00"), utc("2026-10-25T22:00:00+01:00"), 3)

	if got := trading.String(); !strings.Contains(got, "days starting +18h0m0s in Europe/Berlin") {
		t.Errorf("String() = %q", got)
	}
	for _, bad := range []window.CalendarWindows{
		window.Days(berlin).StartAt(24 * h), window.Days(berlin).StartAt(-24 * h), window.Hours(8, berlin).StartAt(8 * h),
		window.Weeks(berlin, time.Monday).StartAt(7 * 24 * h), window.Months(berlin).StartAt(28 * 24 * h),
		window.Years(berlin).StartAt(365 * 24 * h), window.Days(berlin).StartAt(time.Millisecond),
	} {
		if bad.Validate() == nil {
			t.Errorf("%v: Validate() = nil, want an error", bad)
		}
		if ws := bad.WindowsAt(utc("2026-03-29T12:00:00Z")); len(ws) != 0 {
			t.Errorf("%v: WindowsAt = %v, want none for an invalid definition", bad, ws)
		}
	}
}

// Antarctica/Troll shifts by two hours: +00 in winter, +02 in summer. In
// 2026 it springs forward at 01:00 on 29 March (to 03:00) and falls back
// at 03:00 on 25 October (to 01:00), both at 01:00 UTC. After the
// fall-back the clock reads 01:00 to 03:00 a second time: all of it
// belongs to the window in progress, hour 02, which is three hours long;
// hour 01 covers only its first occurrence.
func TestCalendarTwoHourFallBack(t *testing.T) {
	troll := mustLoad(t, "Antarctica/Troll")
	hours := window.Hours(1, troll)
	wantWindow(t, "hour 01 on 25 October", hours.WindowAt(utc("2026-10-24T23:30:00Z")), "2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00", time.Hour)
	wantWindow(t, "hour 02 on 25 October", hours.WindowAt(utc("2026-10-25T00:30:00Z")), "2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+00:00", 3*time.Hour)
	// 01:30 the second time (+00) is in hour 02's window, not hour 01's.
	wantWindow(t, "01:30 again", hours.WindowAt(utc("2026-10-25T01:30:00Z")), "2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+00:00", 3*time.Hour)
	wantWindow(t, "02:30 again", hours.WindowAt(utc("2026-10-25T02:30:00Z")), "2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+00:00", 3*time.Hour)
	wantWindow(t, "label 01", hours.Window(time.Date(2026, 10, 25, 1, 0, 0, 0, time.UTC)), "2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00", time.Hour)
	wantWindow(t, "label 02", hours.Window(time.Date(2026, 10, 25, 2, 0, 0, 0, time.UTC)), "2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+00:00", 3*time.Hour)
	wantWindow(t, "label 03", hours.Window(time.Date(2026, 10, 25, 3, 0, 0, 0, time.UTC)), "2026-10-25T03:00:00+00:00", "2026-10-25T04:00:00+00:00", time.Hour)
	// The 26-hour day has 24 hourly windows; the 22-hour day of 29 March 22
	// (hours 01 and 02 are skipped, and empty).
	wantWindow(t, "25 October", window.Days(troll).WindowAt(utc("2026-10-25T12:00:00Z")), "2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+00:00", 26*time.Hour)
	countWindows(t, hours, utc("2026-10-25T00:00:00+02:00"), utc("2026-10-26T00:00:00+00:00"), 24)
	countWindows(t, hours, utc("2026-03-29T00:00:00+00:00"), utc("2026-03-30T00:00:00+02:00"), 22)
	for _, hour := range []int{1, 2} {
		if w := hours.Window(time.Date(2026, 3, 29, hour, 0, 0, 0, time.UTC)); !w.Start.Equal(w.End) {
			t.Errorf("hour %02d on 29 March, skipped, is %v; want empty", hour, w)
		}
	}
	// Two-hour windows: window 00 ends when the clock first reads 02:00; window
	// 02 covers the rest of the repeated times (01:00 to 03:00 again).
	two := window.Hours(2, troll)
	wantWindow(t, "2h window 00", two.WindowAt(utc("2026-10-24T23:30:00Z")), "2026-10-25T00:00:00+02:00", "2026-10-25T02:00:00+02:00", 2*time.Hour)
	wantWindow(t, "2h window 02", two.WindowAt(utc("2026-10-25T01:30:00Z")), "2026-10-25T02:00:00+02:00", "2026-10-25T04:00:00+00:00", 4*time.Hour)
}

// Every kind of window answers, through the Windows interface, which
// windows contain an instant; each returned window contains it.
func TestWindowsAtThroughTheInterface(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	at := utc("2026-03-29T01:20:00Z")
	for _, tc := range []struct {
		w            window.Windows
		want         int
		inclusiveEnd bool
	}{
		{window.Tumbling(time.Hour), 1, false},
		{window.Hopping(time.Hour, 15*time.Minute), 4, false},
		{window.Days(berlin), 1, false},
		{window.Days(berlin).StartAt(18 * time.Hour), 1, false},
		{window.Hours(1, berlin), 1, false},
		{window.Sliding(10 * time.Minute), 1, true},
	} {
		ws := tc.w.WindowsAt(at)
		if len(ws) != tc.want {
			t.Errorf("%v: %d windows at %v, want %d: %v", tc.w, len(ws), at, tc.want, ws)
		}
		for _, w := range ws {
			if at.Before(w.Start) || at.After(w.End) || at.Equal(w.End) && !tc.inclusiveEnd {
				t.Errorf("%v: window %v does not contain %v", tc.w, w, at)
			}
		}
	}
	// Sliding windows: the window ending at the instant, both ends included.
	ws := window.Sliding(10 * time.Minute).WindowsAt(at)
	if !ws[0].Start.Equal(at.Add(-10*time.Minute)) || !ws[0].End.Equal(at) {
		t.Errorf("sliding window at %v is %v, want [%v, %v]", at, ws[0], at.Add(-10*time.Minute), at)
	}
	if ws := window.Sliding(0).WindowsAt(at); len(ws) != 0 {
		t.Errorf("an invalid sliding definition gives windows %v", ws)
	}
}

// Property: with moved starts too, in many zones over decades, calendar
// windows contain the instant they are asked for, tile time without gaps or
// overlaps, are no longer than MaxSize, and are what WindowsAt returns.
func TestCalendarStartAtProperties(t *testing.T) {
	zones := []string{"Europe/Berlin", "America/Havana", "America/Santiago", "Asia/Beirut", "Australia/Lord_Howe",
		"Asia/Kolkata", "Pacific/Apia", "Pacific/Chatham", "Africa/Casablanca", "Antarctica/Troll", "UTC"}
	rnd := rand.New(rand.NewPCG(9, 10))
	lo, hi := utc("1970-01-01T00:00:00Z").Unix(), utc("2045-01-01T00:00:00Z").Unix()
	const h = time.Hour
	for _, z := range zones {
		loc := mustLoad(t, z)
		for _, w := range []window.CalendarWindows{
			window.Days(loc).StartAt(18 * h), window.Days(loc).StartAt(-6 * h), window.Days(loc).StartAt(2*h + 30*time.Minute),
			window.Hours(3, loc).StartAt(90 * time.Minute), window.Hours(1, loc).StartAt(-30 * time.Minute),
			window.Weeks(loc, time.Sunday).StartAt(18 * h), window.Months(loc).StartAt(14*24*h + 6*h),
			window.Years(loc).StartAt(90 * 24 * h),
		} {
			if err := w.Validate(); err != nil {
				t.Fatalf("%v: %v", w, err)
			}
			for range 100 {
				at := time.Unix(lo+rnd.Int64N(hi-lo), rnd.Int64N(1e9))
				win := w.WindowAt(at)
				if at.Before(win.Start) || !at.Before(win.End) {
					t.Fatalf("%v: window at %v is %v", w, at, win)
				}
				if next := w.WindowAt(win.End); !next.Start.Equal(win.End) {
					t.Fatalf("%v: window after %v is %v", w, win, next)
				}
				if prev := w.WindowAt(win.Start.Add(-time.Nanosecond)); !prev.End.Equal(win.Start) {
					t.Fatalf("%v: window before %v is %v", w, win, prev)
				}
				if l := win.End.Sub(win.Start); l > w.MaxSize() {
					t.Fatalf("%v: window %v is %v long, more than MaxSize %v", w, win, l, w.MaxSize())
				}
				if ws := w.WindowsAt(at); len(ws) != 1 || ws[0] != win {
					t.Fatalf("%v: WindowsAt(%v) = %v, want [%v]", w, at, ws, win)
				}
			}
		}
	}
}

// Trading days from 18:00 to 18:00 in an aggregation (test driver): one
// record an hour from 27 March 18:00 to 30 March 18:00, Berlin time; the
// day holding the spring-forward has 23 records and is 23 hours long.
func TestTradingDayAggregation(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	h := countHarness(t, window.Days(berlin).StartAt(18*time.Hour), window.EmitFinal())
	for at := utc("2026-03-27T18:00:00+01:00"); at.Before(utc("2026-03-30T18:00:00+02:00")); at = at.Add(time.Hour) {
		h.pipe("k", at)
	}
	h.pipe("k", utc("2026-04-05T00:00:00Z"))
	h.expect("three trading days",
		"k 2026-03-27T18:00:00+01:00 2026-03-28T18:00:00+01:00 24",
		"k 2026-03-28T18:00:00+01:00 2026-03-29T18:00:00+02:00 23",
		"k 2026-03-29T18:00:00+02:00 2026-03-30T18:00:00+02:00 24")
}
