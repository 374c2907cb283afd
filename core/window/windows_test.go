package window_test

import (
	"math/rand/v2"
	"testing"
	"time"
	_ "time/tzdata" // zones load on machines without a zoneinfo database

	"github.com/kstreams-go/kstreams/core/window"
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// wantWindow checks w's bounds, given as RFC 3339 instants (with the
// local offset, to be readable), and its length.
func wantWindow(t *testing.T, what string, w window.Window, start, end string, length time.Duration) {
	t.Helper()
	if !w.Start.Equal(utc(start)) || !w.End.Equal(utc(end)) {
		t.Errorf("%s: window %v, want [%s, %s)", what, w, start, end)
	}
	if got := w.End.Sub(w.Start); got != length {
		t.Errorf("%s: window %v is %v long, want %v", what, w, got, length)
	}
}

func TestTumblingAndHopping(t *testing.T) {
	tw := window.Tumbling(time.Hour)
	ws := tw.WindowsAt(utc("2026-03-29T01:30:00Z"))
	if len(ws) != 1 {
		t.Fatalf("tumbling: %d windows, want 1", len(ws))
	}
	wantWindow(t, "tumbling", ws[0], "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z", time.Hour)
	// Start inclusive, end exclusive.
	if ws := tw.WindowsAt(utc("2026-03-29T02:00:00Z")); !ws[0].Start.Equal(utc("2026-03-29T02:00:00Z")) {
		t.Errorf("a record at a window's end belongs to the next window, got %v", ws)
	}
	// Before the epoch: floor, not truncation.
	ws = tw.WindowsAt(time.Unix(-1, 0))
	wantWindow(t, "tumbling before 1970", ws[0], "1969-12-31T23:00:00Z", "1970-01-01T00:00:00Z", time.Hour)

	hw := window.Hopping(time.Hour, 15*time.Minute)
	ws = hw.WindowsAt(utc("2026-03-29T01:20:00Z"))
	starts := []string{"2026-03-29T00:30:00Z", "2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z"}
	if len(ws) != len(starts) {
		t.Fatalf("hopping: %d windows %v, want %d", len(ws), ws, len(starts))
	}
	for i, s := range starts {
		wantWindow(t, "hopping", ws[i], s, utc(s).Add(time.Hour).Format(time.RFC3339), time.Hour)
	}
	// On a boundary: the window ending there is excluded, the one starting there included.
	ws = hw.WindowsAt(utc("2026-03-29T01:00:00Z"))
	if len(ws) != 4 || !ws[0].Start.Equal(utc("2026-03-29T00:15:00Z")) || !ws[3].Start.Equal(utc("2026-03-29T01:00:00Z")) {
		t.Errorf("hopping at a boundary: %v", ws)
	}
	for _, bad := range []window.Windows{window.Tumbling(0), window.Hopping(time.Hour, 2*time.Hour), window.Tumbling(time.Hour).Grace(-1),
		window.Sliding(0), window.Hours(5, time.UTC), window.Days(nil)} {
		if bad.Validate() == nil {
			t.Errorf("%v: Validate() = nil, want an error", bad)
		}
	}
	if window.Session(0).Validate() == nil {
		t.Error("Session(0) validates")
	}
}

// Europe/Berlin in 2026: clocks go forward at 02:00 CET on 29 March
// (01:00 UTC) and back at 03:00 CEST on 25 October (01:00 UTC).
func TestCalendarBerlin(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	days := window.Days(berlin)
	wantWindow(t, "28 March", days.WindowAt(utc("2026-03-28T12:00:00Z")), "2026-03-28T00:00:00+01:00", "2026-03-29T00:00:00+01:00", 24*time.Hour)
	wantWindow(t, "29 March (spring forward)", days.WindowAt(utc("2026-03-29T12:00:00Z")), "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", 23*time.Hour)
	wantWindow(t, "25 October (fall back)", days.WindowAt(utc("2026-10-25T00:30:00Z")), "2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00", 25*time.Hour)
	// Both occurrences of 02:30 on 25 October are in that day.
	for _, ts := range []string{"2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"} {
		if w := days.WindowAt(utc(ts)); w.End.Sub(w.Start) != 25*time.Hour {
			t.Errorf("%s (02:30 local): %v", ts, w)
		}
	}
	// The window bounds are in the zone.
	if w := days.WindowAt(utc("2026-03-29T12:00:00Z")); w.Start.Location() != berlin || w.Start.Hour() != 0 || w.End.Hour() != 0 {
		t.Errorf("day bounds %v: want local midnights in %v", w, berlin)
	}
	// Whole year: 365 windows, 8760 hours; March 743h, October 745h.
	countWindows(t, days, utc("2026-01-01T00:00:00+01:00"), utc("2027-01-01T00:00:00+01:00"), 365)
	months := window.Months(berlin)
	wantWindow(t, "March", months.WindowAt(utc("2026-03-15T00:00:00Z")), "2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00", 743*time.Hour)
	wantWindow(t, "October", months.WindowAt(utc("2026-10-15T00:00:00Z")), "2026-10-01T00:00:00+02:00", "2026-11-01T00:00:00+01:00", 745*time.Hour)
	years := window.Years(berlin)
	wantWindow(t, "2026", years.WindowAt(utc("2026-06-01T00:00:00Z")), "2026-01-01T00:00:00+01:00", "2027-01-01T00:00:00+01:00", 8760*time.Hour)

	// ISO weeks (Monday) and US-style weeks (Sunday) around both changes.
	mon := window.Weeks(berlin, time.Monday)
	wantWindow(t, "ISO week of 29 March", mon.WindowAt(utc("2026-03-29T12:00:00Z")), "2026-03-23T00:00:00+01:00", "2026-03-30T00:00:00+02:00", 167*time.Hour)
	wantWindow(t, "ISO week of 25 October", mon.WindowAt(utc("2026-10-25T12:00:00Z")), "2026-10-19T00:00:00+02:00", "2026-10-26T00:00:00+01:00", 169*time.Hour)
	sun := window.Weeks(berlin, time.Sunday)
	wantWindow(t, "Sunday week of 29 March", sun.WindowAt(utc("2026-03-29T12:00:00Z")), "2026-03-29T00:00:00+01:00", "2026-04-05T00:00:00+02:00", 167*time.Hour)
	wantWindow(t, "Sunday week of 28 March", sun.WindowAt(utc("2026-03-28T12:00:00Z")), "2026-03-22T00:00:00+01:00", "2026-03-29T00:00:00+01:00", 168*time.Hour)
	countWindows(t, mon, utc("2025-12-29T00:00:00+01:00"), utc("2027-01-04T00:00:00+01:00"), 53)

	// Hours: the skipped hour 02:00-03:00 has no window (23 on 29 March);
	// the repeated hour 02:00-03:00 on 25 October is one window of 2h (24
	// windows in the 25-hour day).
	hours := window.Hours(1, berlin)
	wantWindow(t, "01:00 on 29 March", hours.WindowAt(utc("2026-03-29T00:30:00Z")), "2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", time.Hour)
	wantWindow(t, "02:00 on 25 October", hours.WindowAt(utc("2026-10-25T01:30:00Z")), "2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00", 2*time.Hour)
	if w := hours.Window(time.Date(2026, 3, 29, 2, 0, 0, 0, time.UTC)); !w.Start.Equal(w.End) {
		t.Errorf("the skipped hour 02:00 on 29 March is %v, want empty", w)
	}
	countWindows(t, hours, utc("2026-03-29T00:00:00+01:00"), utc("2026-03-30T00:00:00+02:00"), 23)
	countWindows(t, hours, utc("2026-10-25T00:00:00+02:00"), utc("2026-10-26T00:00:00+01:00"), 24)
	six := window.Hours(6, berlin)
	wantWindow(t, "00:00-06:00 on 29 March", six.WindowAt(utc("2026-03-29T00:30:00Z")), "2026-03-29T00:00:00+01:00", "2026-03-29T06:00:00+02:00", 5*time.Hour)
	wantWindow(t, "00:00-06:00 on 25 October", six.WindowAt(utc("2026-10-25T00:30:00Z")), "2026-10-25T00:00:00+02:00", "2026-10-25T06:00:00+01:00", 7*time.Hour)

	if got := days.MaxSize(); got < 25*time.Hour || got > 26*time.Hour {
		t.Errorf("Days(Berlin).MaxSize() = %v, want 25h (or a little more)", got)
	}
}

// Midnight transitions, checked against Go's tzdata: in 2026 Cuba
// (America/Havana) springs forward at 00:00 on 8 March (midnight does not
// exist) and falls back at 01:00 on 1 November (midnight happens twice);
// Chile (America/Santiago) falls back at 24:00 on 4 April (23:00-24:00 of
// the 4th happens twice) and springs forward at 00:00 on 6 September.
func TestCalendarMidnightTransitions(t *testing.T) {
	havana := mustLoad(t, "America/Havana")
	days := window.Days(havana)
	wantWindow(t, "Havana 8 March", days.WindowAt(utc("2026-03-08T12:00:00Z")), "2026-03-08T01:00:00-04:00", "2026-03-09T00:00:00-04:00", 23*time.Hour)
	if w := days.WindowAt(utc("2026-03-08T12:00:00Z")); w.Start.In(havana).Hour() != 1 {
		t.Errorf("Havana 8 March starts at %v, want 01:00 local (midnight does not exist)", w.Start)
	}
	wantWindow(t, "Havana 7 March", days.WindowAt(utc("2026-03-07T12:00:00Z")), "2026-03-07T00:00:00-05:00", "2026-03-08T01:00:00-04:00", 24*time.Hour)
	// Midnight happens twice on 1 November: the day starts at the first.
	wantWindow(t, "Havana 1 November", days.WindowAt(utc("2026-11-01T12:00:00Z")), "2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00", 25*time.Hour)
	for _, ts := range []string{"2026-11-01T04:30:00Z", "2026-11-01T05:30:00Z"} { // 00:30 CDT and 00:30 CST
		if w := days.WindowAt(utc(ts)); !w.Start.Equal(utc("2026-11-01T04:00:00Z")) {
			t.Errorf("%s: %v, want the day of 1 November", ts, w)
		}
	}

	santiago := mustLoad(t, "America/Santiago")
	days = window.Days(santiago)
	wantWindow(t, "Santiago 4 April", days.WindowAt(utc("2026-04-04T12:00:00Z")), "2026-04-04T00:00:00-03:00", "2026-04-05T00:00:00-04:00", 25*time.Hour)
	// 23:30 on the 4th, both times, is in the 4th.
	for _, ts := range []string{"2026-04-05T02:30:00Z", "2026-04-05T03:30:00Z"} {
		if w := days.WindowAt(utc(ts)); !w.Start.Equal(utc("2026-04-04T03:00:00Z")) {
			t.Errorf("%s: %v, want the day of 4 April", ts, w)
		}
	}
	wantWindow(t, "Santiago 6 September", days.WindowAt(utc("2026-09-06T12:00:00Z")), "2026-09-06T01:00:00-03:00", "2026-09-07T00:00:00-03:00", 23*time.Hour)
	wantWindow(t, "Santiago 5 September", days.WindowAt(utc("2026-09-05T12:00:00Z")), "2026-09-05T00:00:00-04:00", "2026-09-06T01:00:00-03:00", 24*time.Hour)
	weeks := window.Weeks(santiago, time.Monday)
	wantWindow(t, "Santiago week of 4 April", weeks.WindowAt(utc("2026-04-04T12:00:00Z")), "2026-03-30T00:00:00-03:00", "2026-04-06T00:00:00-04:00", 169*time.Hour)
	wantWindow(t, "Santiago week of 6 September", weeks.WindowAt(utc("2026-09-06T12:00:00Z")), "2026-08-31T00:00:00-04:00", "2026-09-07T00:00:00-03:00", 167*time.Hour)
}

// Australia/Lord_Howe shifts by 30 minutes: +10:30 in winter, +11 in
// summer. In 2026 it falls back at 02:00 on 5 April (to 01:30) and springs
// forward at 02:00 on 4 October (to 02:30).
func TestCalendarHalfHourShift(t *testing.T) {
	lh := mustLoad(t, "Australia/Lord_Howe")
	days := window.Days(lh)
	wantWindow(t, "Lord Howe 5 April", days.WindowAt(utc("2026-04-05T06:00:00Z")), "2026-04-05T00:00:00+11:00", "2026-04-06T00:00:00+10:30", 24*time.Hour+30*time.Minute)
	wantWindow(t, "Lord Howe 4 October", days.WindowAt(utc("2026-10-04T06:00:00Z")), "2026-10-04T00:00:00+10:30", "2026-10-05T00:00:00+11:00", 23*time.Hour+30*time.Minute)
	hours := window.Hours(1, lh)
	// Fall back: 01:00-02:00 covers 01:00-01:59 daylight and the repeated 01:30-01:59.
	wantWindow(t, "Lord Howe 01:00 on 5 April", hours.WindowAt(utc("2026-04-04T15:10:00Z")), "2026-04-05T01:00:00+11:00", "2026-04-05T02:00:00+10:30", 90*time.Minute)
	// Spring forward: 02:00 becomes 02:30, so the 02:00 window is 30 minutes.
	wantWindow(t, "Lord Howe 02:00 on 4 October", hours.WindowAt(utc("2026-10-03T15:40:00Z")), "2026-10-04T02:30:00+11:00", "2026-10-04T03:00:00+11:00", 30*time.Minute)
	wantWindow(t, "Lord Howe 01:00 on 4 October", hours.WindowAt(utc("2026-10-03T15:00:00Z")), "2026-10-04T01:00:00+10:30", "2026-10-04T02:30:00+11:00", time.Hour)
	countWindows(t, hours, utc("2026-10-04T00:00:00+10:30"), utc("2026-10-05T00:00:00+11:00"), 24)
}

// countWindows walks the windows from from (a window start) to to (a
// window end) and checks that they tile the interval: each starts where
// the previous ended, each contains its start and not its end.
func countWindows(t *testing.T, w window.CalendarWindows, from, to time.Time, want int) {
	t.Helper()
	n := 0
	for at := from; at.Before(to); n++ {
		win := w.WindowAt(at)
		if !win.Start.Equal(at) || !win.End.After(win.Start) {
			t.Fatalf("%v: window at %v is %v", w, at, win)
		}
		if last := w.WindowAt(win.End.Add(-time.Nanosecond)); last != win {
			t.Fatalf("%v: the last instant of %v is in %v", w, win, last)
		}
		at = win.End
	}
	if n != want {
		t.Errorf("%v: %d windows from %v to %v, want %d", w, n, from, to, want)
	}
}

// Property: in many zones, over decades, calendar windows contain the
// instant they are asked for and tile time without gaps or overlaps.
func TestCalendarProperties(t *testing.T) {
	zones := []string{"Europe/Berlin", "America/Havana", "America/Santiago", "Asia/Beirut", "Australia/Lord_Howe",
		"Asia/Kolkata", "Asia/Kathmandu", "Pacific/Apia", "Pacific/Chatham", "America/St_Johns", "Africa/Casablanca",
		"America/Sao_Paulo", "Antarctica/Troll", "UTC"}
	rnd := rand.New(rand.NewPCG(7, 8))
	lo, hi := utc("1970-01-01T00:00:00Z").Unix(), utc("2045-01-01T00:00:00Z").Unix()
	for _, z := range zones {
		loc := mustLoad(t, z)
		for _, w := range []window.CalendarWindows{window.Hours(1, loc), window.Hours(3, loc), window.Days(loc),
			window.Weeks(loc, time.Monday), window.Months(loc), window.Years(loc)} {
			for range 200 {
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
			}
		}
	}
}
