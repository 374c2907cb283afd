package store_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/store"
)

// TestStatsCounter adds from several goroutines and checks every count.
func TestStatsCounter(t *testing.T) {
	var c store.StatsCounter
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				var err error
				if i%10 == 0 {
					err = errors.New("boom")
				}
				c.Add(g+1, 2*(g+1), time.Millisecond, err)
			}
		}()
	}
	wg.Wait()
	want := store.OpStats{RoundTrips: 400, Errors: 40, BytesSent: 1000, BytesReceived: 2000, Duration: 400 * time.Millisecond}
	if got := c.Load(); got != want {
		t.Fatalf("Load() = %+v, want %+v", got, want)
	}
}
