package window

import (
	"context"
	"fmt"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/store"
)

// processSliding aggregates r into sliding windows, as Kafka Streams does:
// a record at t has a left window [t-d, t] and a right window [t+1ns,
// t+1ns+d] (kept only if a later record falls into it), and belongs to
// every existing window containing t. New windows start from the aggregate
// of an existing window holding the same earlier or later records, so each
// window holds exactly the records within d of each other that it spans.
// Windows are inclusive at both ends, so they close at End + grace + 1ns.
func (p *proc[K, V, A, VOut]) processSliding(ctx context.Context, r kstreams.Record[K, V], now int64, d SlidingWindows) (bool, error) {
	t := r.Timestamp.UnixNano()
	diff, grace := int64(d.diff), int64(d.grace)
	closed := func(end int64) bool { return now >= end+grace+int64(closeSlack) }
	if closed(t + 1 + diff) {
		return false, nil // even the record's right window is closed: every window holding t is
	}
	// Collect first: updating while the store iterates would see our own
	// writes, or not.
	var found []store.Windowed[K, Stamped[A]]
	for w, err := range p.windows.Fetch(r.Key, time.Unix(0, t-2*diff), time.Unix(0, t+1)) {
		if err != nil {
			return false, err
		}
		found = append(found, w)
	}
	var (
		leftAgg, rightAgg       *Stamped[A]
		leftExists, rightExists bool
		prev                    int64
		hasPrev                 bool
		starts                  = make(map[int64]bool, len(found))
		applied                 bool
	)
	apply := func(w Window, cur Stamped[A], isNew bool) error {
		end := w.End.UnixNano()
		if closed(end) {
			return nil
		}
		applied = true
		return p.update(ctx, r, w, cur, isNew, end+grace+int64(closeSlack))
	}
	for i := range found {
		f := &found[i]
		s, e := f.Window.Start.UnixNano(), f.Window.End.UnixNano()
		starts[s] = true
		maxTs := f.Value.Timestamp.UnixNano()
		switch {
		case e < t:
			leftAgg, prev, hasPrev = &f.Value, maxTs, true
		case e == t:
			leftExists = true
			if maxTs < t {
				prev, hasPrev = maxTs, true
			}
			if err := apply(f.Window, f.Value, false); err != nil {
				return applied, err
			}
		case s <= t: // e > t: the window contains t
			rightAgg = &f.Value
			if err := apply(f.Window, f.Value, false); err != nil {
				return applied, err
			}
		case s == t+1:
			rightExists = true
		default:
			return applied, fmt.Errorf("%w: window %v for a record at %v", errUnexpectedWindow, f.Window, r.Timestamp)
		}
	}
	win := func(start int64) Window {
		return Window{Start: time.Unix(0, start), End: time.Unix(0, start+diff)}
	}
	// The previous record's right window, if it does not exist and holds t.
	if hasPrev {
		if s := prev + 1; !starts[s] && s+diff >= t {
			if err := apply(win(s), Stamped[A]{Value: p.init(), Timestamp: r.Timestamp}, true); err != nil {
				return applied, err
			}
		}
	}
	// The record's left window: the records of the latest window ending
	// before t, if the previous record is within d of t.
	if !leftExists {
		cur := Stamped[A]{Value: p.init(), Timestamp: r.Timestamp}
		if hasPrev && leftAgg != nil && t-diff <= prev {
			cur.Value = leftAgg.Value
		}
		if err := apply(win(t-diff), cur, true); err != nil {
			return applied, err
		}
	}
	// The record's right window, if later records fall into it: it holds
	// exactly the later records of the window that contained t.
	if !rightExists && rightAgg != nil && rightAgg.Timestamp.UnixNano() > t {
		w := win(t + 1)
		end := w.End.UnixNano()
		if !closed(end) {
			applied = true
			if err := p.put(ctx, r, w, *rightAgg, true, end+grace+int64(closeSlack)); err != nil {
				return applied, err
			}
		}
	}
	return applied, nil
}
