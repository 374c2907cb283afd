package window_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/kstreamstest"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/window"
)

// Expired windows are deleted from the backend (by range deletion of whole
// segments) while live ones remain; with a long retention, they all stay.
func TestRetentionDeletesExpiredWindows(t *testing.T) {
	const keys, hours = 50, 48
	run := func(opts ...window.StoreOption) (*harness, int) {
		h := newHarness(t, countBuilder(window.Tumbling(time.Hour).Grace(10*time.Minute), opts))
		for hr := range hours {
			for k := range keys {
				h.pipe(fmt.Sprintf("key-%02d", k), base.Add(time.Duration(hr)*time.Hour+time.Duration(k)*time.Minute))
			}
		}
		h.read()
		return h, h.counts["counts"].Len()
	}
	h, kept := run()
	_, all := run(window.Retention(1000 * time.Hour))
	if all != keys*hours {
		t.Fatalf("with a long retention the store has %d windows, want %d", all, keys*hours)
	}
	// Retention 1h10m, segments of 35m: at most the windows of the last
	// three hours remain.
	if kept > 3*keys || kept < keys {
		t.Fatalf("with retention %v the store has %d windows, want %d to %d", h.retentionOf(t), kept, keys, 3*keys)
	}
	ws, err := kstreamstest.GetStore[store.WindowStore[string, window.Stamped[int64]]](h.d, "counts")
	if err != nil {
		t.Fatal(err)
	}
	win := func(hr int) window.Window {
		return window.Window{Start: base.Add(time.Duration(hr) * time.Hour), End: base.Add(time.Duration(hr+1) * time.Hour)}
	}
	if v, ok, err := ws.Get("key-07", win(0)); err != nil || ok {
		t.Errorf("Get of the first hour's window = %v, %v, %v; want absent (expired), no error", v, ok, err)
	}
	if v, ok, err := ws.Get("key-07", win(hours-1)); err != nil || !ok || v.Value != 1 {
		t.Errorf("the last hour's window: %v, %v, %v", v, ok, err)
	}
	n := 0
	for w, err := range ws.FetchAll(base, base.Add(hours*time.Hour)) {
		if err != nil {
			t.Fatal(err)
		}
		if w.Window.Start.Before(base.Add((hours - 2) * time.Hour)) {
			t.Errorf("expired window %v of %s is still fetched", w.Window, w.Key)
		}
		n++
	}
	if n == 0 {
		t.Error("no live window fetched")
	}
}

// The same holds for session stores: sessions expire by their end.
func TestRetentionDeletesExpiredSessions(t *testing.T) {
	h := newHarness(t, sessionCountBuilder(window.Session(time.Minute)))
	for i := range 200 {
		h.pipe(fmt.Sprintf("key-%d", i%10), base.Add(time.Duration(i)*time.Hour))
	}
	h.read()
	// Retention 2m: only the sessions of the last hour or so remain.
	if n := h.counts["sessions"].Len(); n > 2 || n < 1 {
		t.Fatalf("session store has %d entries, want 1 or 2", n)
	}
}

func (h *harness) retentionOf(t *testing.T) time.Duration {
	ws, err := kstreamstest.GetStore[store.WindowStore[string, window.Stamped[int64]]](h.d, "counts")
	if err != nil {
		t.Fatal(err)
	}
	return ws.Retention()
}
