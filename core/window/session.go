package window

import (
	"context"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/store"
)

// processSession aggregates r into its session: the sessions of r's key
// within the gap of r's timestamp are merged with a new one-record session.
// If any of them is closed (or r's own session would be), r is late and
// nothing changes: a closed session has been emitted and must not change.
func (p *proc[K, V, A, VOut]) processSession(ctx context.Context, r kstreams.Record[K, V], now int64) (bool, error) {
	d := p.sessions
	t := r.Timestamp
	var found []store.Windowed[K, Stamped[A]]
	for s, err := range p.sessStor.Fetch(r.Key, t.Add(-d.gap), t.Add(d.gap)) {
		if err != nil {
			return false, err
		}
		found = append(found, s)
	}
	merged := Window{Start: t, End: t}
	minEnd := t
	agg := Stamped[A]{Value: p.init(), Timestamp: t}
	for _, s := range found {
		v, err := p.merge(r.Key, agg.Value, s.Value.Value)
		if err != nil {
			return false, err
		}
		agg.Value = v
		if s.Window.Start.Before(merged.Start) {
			merged.Start = s.Window.Start
		}
		if s.Window.End.After(merged.End) {
			merged.End = s.Window.End
		}
		if s.Window.End.Before(minEnd) {
			minEnd = s.Window.End
		}
		if s.Value.Timestamp.After(agg.Timestamp) {
			agg.Timestamp = s.Value.Timestamp
		}
	}
	if now >= d.closeAt(Window{End: minEnd}) {
		return false, nil
	}
	v, err := p.add(r.Key, r.Value, agg.Value)
	if err != nil {
		return true, err
	}
	agg.Value = v
	unchanged := len(found) == 1 && sameWindow(found[0].Window, merged)
	if !unchanged {
		for _, s := range found {
			if err := p.sessStor.Delete(r.Key, s.Window); err != nil {
				return true, err
			}
			if p.cfg.final {
				if err := p.pending.Delete(pending[K]{close: d.closeAt(s.Window), win: s.Window, key: r.Key}); err != nil {
					return true, err
				}
			}
		}
	}
	merged = Window{Start: merged.Start.UTC(), End: merged.End.UTC()}
	return true, p.put(ctx, r, merged, agg, !unchanged, d.closeAt(merged))
}

func sameWindow(a, b Window) bool { return a.Start.Equal(b.Start) && a.End.Equal(b.End) }
