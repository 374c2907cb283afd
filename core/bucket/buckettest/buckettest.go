// Package buckettest is the conformance suite of bucket.Bucket: every
// driver runs it against its real service (or the closest stand-in a test
// can start).
package buckettest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kstreams-go/kstreams/core/bucket"
)

// Open returns an empty bucket for one subtest (a new bucket, or a new
// prefix of a shared one). The suite does not close anything.
type Open func(t *testing.T) bucket.Bucket

// Run checks b's contract: round trips, missing objects, ordered listing by
// prefix, large objects, deletes, and conditional writes under races
// (exactly one of concurrent create-if-absent or compare-and-swap writers
// wins).
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, bucket.Bucket)
	}{
		{"RoundTrip", testRoundTrip},
		{"Missing", testMissing},
		{"ListOrderAndPrefix", testList},
		{"LargeObject", testLarge},
		{"Delete", testDelete},
		{"IfAbsent", testIfAbsent},
		{"IfMatch", testIfMatch},
		{"ConcurrentIfAbsentOneWins", testConcurrentIfAbsent},
		{"ConcurrentIfMatchOneWins", testConcurrentIfMatch},
		{"CheckConditional", testCheckConditional},
		{"BadInput", testBadInput},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func put(t *testing.T, b bucket.Bucket, name, data string, cond bucket.Cond) string {
	t.Helper()
	v, err := b.Put(context.Background(), name, strings.NewReader(data), int64(len(data)), cond)
	if err != nil {
		t.Fatalf("Put(%q, %s): %v", name, cond, err)
	}
	if v == "" {
		t.Fatalf("Put(%q) returned an empty version", name)
	}
	return v
}

func tryPut(b bucket.Bucket, name, data string, cond bucket.Cond) (string, error) {
	return b.Put(context.Background(), name, strings.NewReader(data), int64(len(data)), cond)
}

func get(t *testing.T, b bucket.Bucket, name string) ([]byte, bucket.Info) {
	t.Helper()
	r, info, err := b.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("Get(%q): reading: %v", name, err)
	}
	return data, info
}

func wantContents(t *testing.T, b bucket.Bucket, name, want string) bucket.Info {
	t.Helper()
	data, info := get(t, b, name)
	if string(data) != want {
		t.Fatalf("Get(%q) = %q; want %q", name, abbrev(data), abbrev([]byte(want)))
	}
	if info.Name != name || info.Size != int64(len(want)) || info.Version == "" {
		t.Fatalf("Get(%q) info = %+v; want name %q, size %d, a version", name, info, name, len(want))
	}
	return info
}

func abbrev(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%s... (%d bytes)", b[:40], len(b))
	}
	return string(b)
}

func wantNotFound(t *testing.T, b bucket.Bucket, name string) {
	t.Helper()
	if r, _, err := b.Get(context.Background(), name); !errors.Is(err, bucket.ErrNotFound) {
		if err == nil {
			r.Close()
		}
		t.Fatalf("Get(%q): %v; want bucket.ErrNotFound", name, err)
	}
	if _, err := b.Stat(context.Background(), name); !errors.Is(err, bucket.ErrNotFound) {
		t.Fatalf("Stat(%q): %v; want bucket.ErrNotFound", name, err)
	}
}

func list(t *testing.T, b bucket.Bucket, prefix string) []bucket.Info {
	t.Helper()
	var infos []bucket.Info
	for info, err := range b.List(context.Background(), prefix) {
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		infos = append(infos, info)
	}
	return infos
}

func names(infos []bucket.Info) []string {
	var ns []string
	for _, i := range infos {
		ns = append(ns, i.Name)
	}
	return ns
}

func testRoundTrip(t *testing.T, b bucket.Bucket) {
	v1 := put(t, b, "a/b/c.txt", "hello", bucket.Cond{})
	info := wantContents(t, b, "a/b/c.txt", "hello")
	if info.Version != v1 {
		t.Fatalf("Get's version %q, Put returned %q", info.Version, v1)
	}
	st, err := b.Stat(context.Background(), "a/b/c.txt")
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != v1 || st.Size != 5 || st.Name != "a/b/c.txt" || st.Modified.IsZero() {
		t.Fatalf("Stat = %+v; want version %q, size 5, a modification time", st, v1)
	}
	v2 := put(t, b, "a/b/c.txt", "bye", bucket.Cond{})
	if v2 == v1 {
		t.Fatalf("an overwrite with other contents kept version %q", v1)
	}
	wantContents(t, b, "a/b/c.txt", "bye")
	put(t, b, "empty", "", bucket.Cond{})
	wantContents(t, b, "empty", "")
	odd := "dir/ünïcode name+with=odd&chars%2F..~"
	put(t, b, odd, "odd", bucket.Cond{})
	wantContents(t, b, odd, "odd")
	binary := string([]byte{0, 1, 2, 0xff, 0xfe, '\n'})
	put(t, b, "binary", binary, bucket.Cond{})
	wantContents(t, b, "binary", binary)
}

func testMissing(t *testing.T, b bucket.Bucket) {
	wantNotFound(t, b, "missing")
	put(t, b, "present", "x", bucket.Cond{})
	wantNotFound(t, b, "presen")
	wantNotFound(t, b, "present/child")
	if got := list(t, b, "missing"); len(got) != 0 {
		t.Fatalf("List(missing) = %v; want nothing", names(got))
	}
	if err := b.Delete(context.Background(), "missing"); err != nil {
		t.Fatalf("Delete of a missing object: %v; want nil", err)
	}
}

func testList(t *testing.T, b bucket.Bucket) {
	// No name is another's parent directory ("a" next to "a/1"): see
	// bucket.Bucket.
	all := []string{"a/1", "a/10", "a/2", "a/b/x", "a-", "a.b", "ab", "b/a", "c", "z", "~"}
	shuffled := slices.Clone(all)
	mrand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, n := range shuffled {
		put(t, b, n, "data of "+n, bucket.Cond{})
	}
	want := slices.Clone(all)
	slices.Sort(want)
	got := list(t, b, "")
	if !slices.Equal(names(got), want) {
		t.Fatalf("List(\"\") = %v; want %v", names(got), want)
	}
	for _, info := range got {
		if info.Size != int64(len("data of "+info.Name)) || info.Version == "" || info.Modified.IsZero() {
			t.Fatalf("List info %+v: want size %d, a version and a modification time", info, len("data of "+info.Name))
		}
	}
	for prefix, want := range map[string][]string{
		"a/":  {"a/1", "a/10", "a/2", "a/b/x"},
		"a":   {"a-", "a.b", "a/1", "a/10", "a/2", "a/b/x", "ab"},
		"a/b": {"a/b/x"},
		"b":   {"b/a"},
		"c":   {"c"},
		"d":   nil,
		"~":   {"~"},
	} {
		if got := names(list(t, b, prefix)); !slices.Equal(got, want) {
			t.Errorf("List(%q) = %v; want %v", prefix, got, want)
		}
	}
	// Stopping early is allowed.
	for range b.List(context.Background(), "") {
		break
	}
}

func testLarge(t *testing.T, b bucket.Bucket) {
	const size = 20<<20 + 12345 // above the usual multipart thresholds
	data := make([]byte, size)
	rand.Read(data)
	v, err := b.Put(context.Background(), "large", bytes.NewReader(data), size, bucket.Cond{})
	if err != nil {
		t.Fatalf("Put of %d bytes: %v", size, err)
	}
	got, info := get(t, b, "large")
	if !bytes.Equal(got, data) {
		t.Fatalf("Get of a %d-byte object returned %d bytes that differ", size, len(got))
	}
	if info.Size != size || info.Version != v {
		t.Fatalf("Get info %+v; want size %d, version %q", info, size, v)
	}
	// A conditional write of a large object.
	data[0]++
	if _, err := b.Put(context.Background(), "large", bytes.NewReader(data), size, bucket.IfMatch(v)); err != nil {
		t.Fatalf("conditional Put of %d bytes: %v", size, err)
	}
	if got, _ := get(t, b, "large"); !bytes.Equal(got, data) {
		t.Fatal("Get after a conditional rewrite of a large object returned other bytes")
	}
}

func testDelete(t *testing.T, b bucket.Bucket) {
	put(t, b, "d/1", "one", bucket.Cond{})
	put(t, b, "d/2", "two", bucket.Cond{})
	if err := b.Delete(context.Background(), "d/1"); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, b, "d/1")
	wantContents(t, b, "d/2", "two")
	if got := names(list(t, b, "d/")); !slices.Equal(got, []string{"d/2"}) {
		t.Fatalf("List after Delete = %v; want [d/2]", got)
	}
	if err := b.Delete(context.Background(), "d/1"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	// A deleted object can be created again, also conditionally.
	put(t, b, "d/1", "again", bucket.IfAbsent)
	wantContents(t, b, "d/1", "again")
}

func testIfAbsent(t *testing.T, b bucket.Bucket) {
	v := put(t, b, "once", "first", bucket.IfAbsent)
	_, err := tryPut(b, "once", "second", bucket.IfAbsent)
	if !errors.Is(err, bucket.ErrPreconditionFailed) {
		t.Fatalf("second IfAbsent Put: %v; want bucket.ErrPreconditionFailed", err)
	}
	if info := wantContents(t, b, "once", "first"); info.Version != v {
		t.Fatalf("a refused write changed the version: %q, was %q", info.Version, v)
	}
}

func testIfMatch(t *testing.T, b bucket.Bucket) {
	if _, err := tryPut(b, "cas", "x", bucket.IfMatch("no-such-version")); !errors.Is(err, bucket.ErrPreconditionFailed) {
		t.Fatalf("IfMatch Put of a missing object: %v; want bucket.ErrPreconditionFailed", err)
	}
	wantNotFound(t, b, "cas")
	v1 := put(t, b, "cas", "v1", bucket.IfAbsent)
	v2 := put(t, b, "cas", "v2", bucket.IfMatch(v1))
	if v2 == v1 {
		t.Fatalf("compare-and-swap kept version %q", v1)
	}
	wantContents(t, b, "cas", "v2")
	if _, err := tryPut(b, "cas", "stale", bucket.IfMatch(v1)); !errors.Is(err, bucket.ErrPreconditionFailed) {
		t.Fatalf("IfMatch Put with a stale version: %v; want bucket.ErrPreconditionFailed", err)
	}
	if info := wantContents(t, b, "cas", "v2"); info.Version != v2 {
		t.Fatalf("version %q after a refused write; want %q", info.Version, v2)
	}
	// An unconditional write changes the version: a CAS on the old one fails.
	put(t, b, "cas", "v3", bucket.Cond{})
	if _, err := tryPut(b, "cas", "stale", bucket.IfMatch(v2)); !errors.Is(err, bucket.ErrPreconditionFailed) {
		t.Fatalf("IfMatch Put after an unconditional overwrite: %v; want bucket.ErrPreconditionFailed", err)
	}
	// After a delete, a CAS on the deleted version fails.
	if err := b.Delete(context.Background(), "cas"); err != nil {
		t.Fatal(err)
	}
	if _, err := tryPut(b, "cas", "stale", bucket.IfMatch(v2)); !errors.Is(err, bucket.ErrPreconditionFailed) {
		t.Fatalf("IfMatch Put after Delete: %v; want bucket.ErrPreconditionFailed", err)
	}
}

const racers = 8

// race runs racers writers at once and returns which of them succeeded;
// every failure must be ErrPreconditionFailed.
func race(t *testing.T, write func(i int) error) []int {
	t.Helper()
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		mu      sync.Mutex
		winners []int
	)
	for i := range racers {
		wg.Go(func() {
			<-start
			err := write(i)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, i)
			case !errors.Is(err, bucket.ErrPreconditionFailed):
				t.Errorf("racer %d: %v; want success or bucket.ErrPreconditionFailed", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	return winners
}

func testConcurrentIfAbsent(t *testing.T, b bucket.Bucket) {
	for round := range 3 {
		name := fmt.Sprintf("race-create-%d", round)
		winners := race(t, func(i int) error {
			_, err := tryPut(b, name, fmt.Sprintf("racer %d", i), bucket.IfAbsent)
			return err
		})
		if len(winners) != 1 {
			t.Fatalf("round %d: %d of %d concurrent IfAbsent writers won (%v); want exactly 1", round, len(winners), racers, winners)
		}
		wantContents(t, b, name, fmt.Sprintf("racer %d", winners[0]))
	}
}

func testConcurrentIfMatch(t *testing.T, b bucket.Bucket) {
	v := put(t, b, "race-cas", "initial", bucket.Cond{})
	for round := range 3 {
		versions := make([]string, racers)
		winners := race(t, func(i int) error {
			var err error
			versions[i], err = tryPut(b, "race-cas", fmt.Sprintf("round %d racer %d", round, i), bucket.IfMatch(v))
			return err
		})
		if len(winners) != 1 {
			t.Fatalf("round %d: %d of %d concurrent IfMatch writers won (%v); want exactly 1", round, len(winners), racers, winners)
		}
		info := wantContents(t, b, "race-cas", fmt.Sprintf("round %d racer %d", round, winners[0]))
		if info.Version != versions[winners[0]] {
			t.Fatalf("round %d: version %q; the winner's Put returned %q", round, info.Version, versions[winners[0]])
		}
		v = info.Version
	}
}

func testCheckConditional(t *testing.T, b bucket.Bucket) {
	if err := bucket.CheckConditional(context.Background(), b, "probe/"); err != nil {
		t.Fatal(err)
	}
	if got := list(t, b, "probe/"); len(got) != 0 {
		t.Fatalf("CheckConditional left objects behind: %v", names(got))
	}
}

func testBadInput(t *testing.T, b bucket.Bucket) {
	ctx := context.Background()
	if _, err := b.Put(ctx, "", strings.NewReader("x"), 1, bucket.Cond{}); err == nil {
		t.Error("Put with an empty name succeeded")
	}
	if _, err := b.Put(ctx, "bad\nname", strings.NewReader("x"), 1, bucket.Cond{}); err == nil {
		t.Error("Put with a newline in the name succeeded")
	}
	if _, err := b.Put(ctx, "short", strings.NewReader("xy"), 5, bucket.Cond{}); err == nil {
		t.Error("Put of a 2-byte reader with size 5 succeeded")
	}
	if _, err := b.Put(ctx, "long", strings.NewReader("xyz"), 2, bucket.Cond{}); err == nil {
		if data, _ := get(t, b, "long"); string(data) != "xy" {
			t.Errorf("Put of a 3-byte reader with size 2 succeeded and stored %q", data)
		}
	}
	wantNotFound(t, b, "short")
	if _, _, err := b.Get(ctx, ""); err == nil {
		t.Error("Get with an empty name succeeded")
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.Put(canceled, "canceled", strings.NewReader("x"), 1, bucket.Cond{}); err == nil {
		t.Error("Put with a canceled context succeeded")
	}
}
