package kstreamstest

import (
	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/internal/testhooks"
)

// Crash stops app as a crash of its process would, so that a test can
// check how the application recovers (run a new App with the same
// application id, and look at its outputs and stores). It is for tests
// against a cluster (package embedded, or a real one); a Driver has no
// crash to simulate.
//
// The app stops processing at once: nothing in flight is finished,
// nothing is flushed, committed or checkpointed, and outputs not yet
// acknowledged may be lost or land. So the next owner of its tasks
// processes again every record since the last commit, restoring the
// stores from their changelogs (from a state directory, only the tail
// after the last checkpoint) — the repeated effects at-least-once delivery
// allows, as after a real crash.
//
// Crash returns at once; app's Run returns nil soon after, and from then
// on the instance writes nothing. Unlike a killed process, the instance
// leaves its consumer group as its client closes, so the group hands its
// tasks to the other instances at once rather than after the session
// timeout. Called before Run, it makes Run return nil without processing;
// after Run returned, it does nothing. An App runs once: run a new App to
// recover.
func Crash(app *kstreams.App) { testhooks.CrashApp(app) }
