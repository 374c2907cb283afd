package kstreams_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/store/memory"
)

// TestStateOfTasksNotOwnedIsDeleted: the state directory of a task the
// instance does not own is deleted once unused for the cleanup delay;
// owned tasks' directories, recently used ones and anything not named like
// a task stay.
func TestStateOfTasksNotOwnedIsDeleted(t *testing.T) {
	brokers := testBrokers(t)
	in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
	createTopics(t, brokers, 1, in, out)
	state := t.TempDir()
	appDir := filepath.Join(state, appID)
	mk := func(name string, age time.Duration) string {
		dir := filepath.Join(appDir, name)
		if err := os.MkdirAll(filepath.Join(dir, "counts"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "counts", "data"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		if err := os.Chtimes(dir, at, at); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	stale := mk("0_7", time.Hour)        // a task owned an hour ago
	recent := mk("0_8", 0)               // released just now
	owned := mk("0_0", time.Hour)        // the app's own task: its old state is reused
	other := mk("not-a-task", time.Hour) // not ours to delete
	const delay = 20 * time.Second

	a := startApp(t, countingTopology(t, in, out, memory.Supplier()), kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(appID),
		kstreams.WithStateDir(state), kstreams.WithStateCleanupDelay(delay))
	countAfter(t, brokers, in, out, "a", a) // the app owns task 0_0
	waitFor(t, 30*time.Second, "the stale task directory to be deleted", func() bool {
		_, err := os.Stat(stale)
		return os.IsNotExist(err)
	})
	for _, dir := range []string{recent, owned, other} {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("%s: %v; want it kept", filepath.Base(dir), err)
		}
	}
	// The owned task's directory is touched while owned: it never ages.
	if info, err := os.Stat(owned); err == nil && time.Since(info.ModTime()) > delay {
		t.Errorf("owned task directory last used %v ago; want it touched", time.Since(info.ModTime()))
	}
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
}
