package runtime

import (
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// State cleanup: the state directory of a task this instance no longer
// owns is deleted once it was not used for Config.StateCleanupDelay. A
// directory's modification time records its last use: a task's directory
// is touched when the task is created, at every cleanup pass while the
// task is owned, and when it is closed, so a directory left by a crashed
// process counts from about the crash.

var taskDirName = regexp.MustCompile(`^[0-9]+_[0-9]+$`)

// cleanupInterval is how often cleanState runs.
func (r *Runtime) cleanupInterval() time.Duration {
	return min(max(r.cfg.StateCleanupDelay/4, time.Second), time.Minute)
}

// appStateDir is the directory of the application's task directories, ""
// without a state directory.
func (r *Runtime) appStateDir() string {
	if r.cfg.StateDir == "" {
		return ""
	}
	return filepath.Join(r.cfg.StateDir, r.cfg.AppID)
}

// touchTaskDir records a use of the task directory name, if it exists.
func (r *Runtime) touchTaskDir(name string, now time.Time) {
	if dir := r.appStateDir(); dir != "" {
		_ = os.Chtimes(filepath.Join(dir, name), now, now)
	}
}

// cleanState touches the directories of the tasks owned (or still
// closing, or waiting to be rebuilt) and deletes those of other tasks not
// used for the cleanup delay. Called by the loop with r.mu held, so no
// task is being created meanwhile.
func (r *Runtime) cleanState(now time.Time) {
	dir := r.appStateDir()
	if dir == "" {
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !os.IsNotExist(err) {
			r.log.Warn("listing the state directory for cleanup", "dir", dir, "error", err)
		}
		return
	}
	inUse := map[string]bool{}
	for id := range r.tasks {
		inUse[id.String()] = true
	}
	for _, old := range r.rebuilds {
		inUse[old.t.ID().String()] = true
	}
	r.closingMu.Lock()
	for id := range r.closing {
		inUse[id.String()] = true
	}
	r.closingMu.Unlock()
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !taskDirName.MatchString(name) {
			continue
		}
		path := filepath.Join(dir, name)
		if inUse[name] {
			_ = os.Chtimes(path, now, now)
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // deleted meanwhile
		}
		idle := now.Sub(info.ModTime())
		if idle < r.cfg.StateCleanupDelay {
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			r.log.Warn("deleting the state of a task not owned", "task", name, "dir", path, "error", err)
			continue
		}
		r.log.Info("deleted the state of a task not owned", "task", name, "dir", path, "unused_for", idle.Round(time.Second).String())
	}
}
