package join_test

import (
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/join"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store/memory"
)

func streamJoinTopology(kind string, w join.JoinWindows) *kstreams.Builder {
	b := kstreams.NewBuilder()
	l := kstreams.Source(b, "left", []string{"left"}, serde.String, serde.String)
	r := kstreams.Source(b, "right", []string{"right"}, serde.String, serde.String)
	st := join.Stores(serde.String, serde.String, serde.String, memory.Supplier())
	var j kstreams.Node[string, string]
	switch kind {
	case "inner":
		j = join.StreamStream(l, r, "join", w, st, func(_ string, a, b string) (string, error) { return a + "+" + b, nil })
	case "left":
		j = join.StreamStreamLeft(l, r, "join", w, st, func(_ string, a string, b *string) (string, error) { return a + "+" + str(b), nil })
	default:
		j = join.StreamStreamOuter(l, r, "join", w, st, func(_ string, a, b *string) (string, error) { return str(a) + "+" + str(b), nil })
	}
	kstreams.Sink(j, "out", "out", serde.String, serde.String)
	return b
}

func TestStreamStream(t *testing.T) {
	// Within 10 minutes, 5 minutes of grace.
	w := join.Within(10 * time.Minute).Grace(5 * time.Minute)
	steps := []step{
		{"left", "a", v("L1"), 0},
		{"right", "a", v("R1"), 5},  // joins L1
		{"right", "a", v("R2"), 12}, // joins L1? no: 12 minutes apart
		{"left", "b", v("L2"), 13},  // nothing for b yet
		{"left", "a", v("L3"), 11},  // out of order: joins R1 and R2
		{"right", "c", v("R3"), 20}, // stream time 20: R2's window (12+10+5) is open
		{"right", "c", v("R4"), 40}, // closes b's L2 (13+15 < 40) and R2 is matched
		{"left", "b", v("L4"), 16},  // late for b's window: L2 was forwarded alone, L4 alone too
	}
	for _, tc := range []struct{ kind, want string }{
		{"inner", "a=L1+R1@5 a=L3+R1@11 a=L3+R2@12"},
		{"left", "a=L1+R1@5 a=L3+R1@11 a=L3+R2@12 b=L2+~@13 b=L4+~@16"},
		{"outer", "a=L1+R1@5 a=L3+R1@11 a=L3+R2@12 b=L2+~@13 c=~+R3@20 b=L4+~@16"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			if got := run(t, streamJoinTopology(tc.kind, w), steps); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// Kafka Streams forwards a left record with no match at once when its
// window [t-d, t+d] ended before stream time, although the grace period
// lets right records still arrive and join it: it then forwards both
// (L, null) and (L, R). kstreams waits for the window to close.
func TestStreamStreamNoSpuriousResult(t *testing.T) {
	w := join.Within(10 * time.Minute).Grace(50 * time.Minute)
	steps := []step{
		{"right", "z", v("Z"), 15},  // stream time 15
		{"left", "k", v("L"), 0},    // window [-10, 10] ended, but within grace
		{"right", "k", v("R"), 5},   // joins L
		{"right", "z", v("Z2"), 90}, // closes every window above
		{"right", "k", v("R2"), 3},  // late: L's window closed, R2 does not join it
	}
	for _, tc := range []struct{ kind, want string }{
		{"left", "k=L+R@5"},
		{"outer", "k=L+R@5 z=~+Z@15 k=~+R2@3"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			if got := run(t, streamJoinTopology(tc.kind, w), steps); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestStreamStreamBuildErrors(t *testing.T) {
	b := kstreams.NewBuilder()
	l := kstreams.Source(b, "left", []string{"left"}, serde.String, serde.String)
	r := kstreams.Source(b, "right", []string{"right"}, serde.String, serde.String)
	join.StreamStream(l, r, "j", join.Within(-time.Second), join.Stores(serde.String, serde.String, serde.String, memory.Supplier()),
		func(_ string, a, b string) (string, error) { return a + b, nil })
	if _, err := b.Build(); err == nil {
		t.Error("a negative time difference: no Build error")
	}
	b = kstreams.NewBuilder()
	l = kstreams.Source(b, "left", []string{"left"}, serde.String, serde.String)
	r = kstreams.Source(b, "right", []string{"right"}, serde.String, serde.String)
	join.StreamStreamLeft(l, r, "j", join.Within(time.Second), join.StreamStores[string, string, string]{},
		func(_ string, a string, b *string) (string, error) { return a, nil })
	if _, err := b.Build(); err == nil {
		t.Error("zero Stores: no Build error")
	}
}
